"""Shared fixtures: parameters, a built dataset version, a throwaway DVC repository, and MLflow
with a server (`server`) or without one (`local_registry`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from app import stack
from app.config import REPO_ROOT, Params, Settings, load_params
from app.data import build_version, dvc, load_split
from app.stack import free_port


@pytest.fixture(autouse=True, scope="session")
def git_identity() -> None:
    """Tests commit in throwaway repos; give git a name without touching the user's config."""
    mp = pytest.MonkeyPatch()
    for role in ("AUTHOR", "COMMITTER"):
        mp.setenv(f"GIT_{role}_NAME", "workbook tests")
        mp.setenv(f"GIT_{role}_EMAIL", "tests@mlops-workbook.local")
    yield
    mp.undo()


@pytest.fixture(scope="session")
def params() -> Params:
    return load_params(REPO_ROOT / "params.yaml")


@pytest.fixture(scope="session")
def v1_dir(tmp_path_factory, params) -> Path:
    """Version v1, built once per session. Never modify it: copy it (see `data_copy`)."""
    return build_version(params.data, "v1", tmp_path_factory.mktemp("built") / "v1")


@pytest.fixture
def data_copy(v1_dir, tmp_path) -> Path:
    """A private, writable copy of v1 to break in a test."""
    return shutil.copytree(v1_dir, tmp_path / "data")


@pytest.fixture
def dvc_repo(tmp_path) -> Settings:
    """An empty git + DVC repository with its own local remote, as Settings pointing at it."""
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "--quiet"], cwd=root, check=True)
    dvc("init", "--quiet", repo=root)
    dvc("config", "core.analytics", "false", repo=root)
    return Settings(root=root, dvc_remote_url=str(tmp_path / "remote"), _env_file=None)


@pytest.fixture(scope="session")
def v1_arrays(v1_dir):
    """(train, val) as (features, labels) arrays of version v1."""
    return load_split(v1_dir / "train"), load_split(v1_dir / "val")


@pytest.fixture(scope="session")
def trained(v1_arrays, params) -> dict:
    """Both families, trained once on v1 with the real params."""
    from app.training.fit import FAMILIES, train  # torch: only for the tests that train

    train_data, val_data = v1_arrays
    return {family: train(family, params.train, train_data, val_data) for family in FAMILIES}


@pytest.fixture(scope="session")
def project(tmp_path_factory, v1_dir) -> Path:
    """A project folder with v1 in data/ and the repository's data.dvc, for stage tests."""
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(v1_dir, root / "data")
    shutil.copy(REPO_ROOT / "data.dvc", root / "data.dvc")
    return root


@pytest.fixture(scope="session")
def server(tmp_path_factory, project) -> Settings:
    """A real MLflow server on a free port, its state in a temporary folder; stopped after."""
    settings = Settings(
        root=project,
        state_dir=tmp_path_factory.mktemp("state"),
        mlflow_port=free_port(),
        _env_file=None,
    )
    with stack.running(settings, "mlflow") as (service,):
        yield settings
    assert not stack.is_healthy(service)


@pytest.fixture(scope="session")
def local_registry(tmp_path_factory, project) -> Settings:
    """MLflow without a server: a SQLite store and its artifacts in a temporary folder.

    The same tracking and registry code as against `server` (MLflow's own SQL store answers
    both), for the fast tier; the real server is what `server` tests.
    """
    state = tmp_path_factory.mktemp("state")
    database = state / "mlflow" / "mlflow.db"
    database.parent.mkdir()
    return Settings(
        root=project,
        state_dir=state,
        mlflow_tracking_uri=f"sqlite:///{database}",
        _env_file=None,
    )
