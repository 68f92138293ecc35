"""Settings come from the environment; importing the package has no side effects."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from app.config import REPO_ROOT, Settings, load_params


def test_environment_overrides_a_setting(monkeypatch):
    monkeypatch.setenv("WORKBOOK_API_PORT", "9001")
    monkeypatch.setenv("WORKBOOK_DVC_REMOTE_URL", "/srv/dvc")
    settings = Settings(_env_file=None)
    assert settings.api_port == 9001
    assert settings.dvc_remote_url == "/srv/dvc"


def test_prometheus_is_the_stacks_own_unless_one_is_named(monkeypatch):
    monkeypatch.setenv("WORKBOOK_PROMETHEUS_PORT", "9391")
    assert Settings(_env_file=None).prometheus_url == "http://127.0.0.1:9391"
    monkeypatch.setenv("WORKBOOK_PROMETHEUS_SERVER_URL", "http://prometheus:9090")
    assert Settings(_env_file=None).prometheus_url == "http://prometheus:9090"


def test_paths_derive_from_the_root(tmp_path):
    settings = Settings(root=tmp_path, _env_file=None)
    assert settings.data_dir == tmp_path / "data"
    assert settings.dvc_file == tmp_path / "data.dvc"
    assert settings.runs_dir == tmp_path / "runs"


def test_a_bad_port_is_rejected(monkeypatch):
    monkeypatch.setenv("WORKBOOK_MLFLOW_PORT", "not-a-port")
    with pytest.raises(ValidationError, match="mlflow_port"):
        Settings(_env_file=None)


def test_params_yaml_is_checked(tmp_path):
    bad = tmp_path / "params.yaml"
    text = (REPO_ROOT / "params.yaml").read_text()
    bad.write_text(text.replace("val_fraction: 0.2", "val_fraction: 2"))
    with pytest.raises(ValidationError, match="val_fraction"):
        load_params(bad)


def test_importing_the_package_changes_nothing(tmp_path):
    """No folders, no logging handlers, no files: import is free of side effects."""
    code = (
        "import logging, app.config, app.data, app.pipeline;"
        "assert not logging.getLogger().handlers, logging.getLogger().handlers"
    )
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True)
    assert list(tmp_path.iterdir()) == []
