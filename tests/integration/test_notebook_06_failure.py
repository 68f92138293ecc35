"""Notebook 06 failing in the middle, on the stack `make test` runs: it fails fast, with the
reason, and leaves no process, alias, version, silence or folder behind.

It runs in the shared-stack unit right after the notebooks (conftest.py), as the registry's
champion comes from them. The failure is forced the way a slow machine would meet it: a
timeout of 1 s for the first retrain, which is still training when the wait gives up.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import httpx
import nbformat
import papermill
import pytest
from mlflow.tracking import MlflowClient
from papermill.exceptions import PapermillExecutionError

from app.config import REPO_ROOT, get_settings
from app.sandbox import Sandbox
from app.training import setup_mlflow

pytestmark = pytest.mark.integration
NOTEBOOK = REPO_ROOT / "notebooks" / "06_automated_retraining.ipynb"


def registry_state(client: MlflowClient, name: str) -> tuple[dict, list[str]]:
    versions = sorted(v.version for v in client.search_model_versions(f"name = '{name}'"))
    return dict(client.get_registered_model(name).aliases), versions


def active_silences(settings) -> list[str]:
    found = httpx.get(f"{settings.alertmanager_url}/api/v2/silences").json()
    return [s["id"] for s in found if s["status"]["state"] == "active"]


def processes_in(folder: Path) -> list[int]:
    """Pids of the processes working in `folder` (the watcher runs in its state folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):  # not a process, or gone meanwhile
            if entry.name.isdigit() and str(folder) in str((entry / "cwd").readlink()):
                found.append(int(entry.name))
    return found


def test_notebook_06_stopped_in_the_middle_leaves_nothing_behind(tmp_path):
    settings = get_settings()
    setup_mlflow(settings)
    client = MlflowClient()
    before, silences_before = registry_state(client, settings.model_name), active_silences(settings)
    folder = Sandbox(settings, "notebook-06").folder

    with pytest.raises(PapermillExecutionError) as failed:
        papermill.execute_notebook(
            NOTEBOOK,
            tmp_path / NOTEBOOK.name,
            parameters={"timeout_seconds": 1},
            kernel_name=settings.kernel_name,
            cwd=NOTEBOOK.parent,
            progress_bar=False,
        )

    assert "still waiting after 1 s" in failed.value.evalue
    executed = nbformat.read(tmp_path / NOTEBOOK.name, as_version=4)
    said = "".join(o.get("text", "") for cell in executed.cells for o in cell.get("outputs", []))
    assert "a cell failed; given back:" in said and "stopped retrainer" in said, said[-2000:]
    assert not folder.exists(), "the sandbox's folder (the clone, the watcher's state) is left"
    assert processes_in(folder) == [], "a process of the notebook still runs"
    assert registry_state(client, settings.model_name) == before
    assert active_silences(settings) == silences_before
