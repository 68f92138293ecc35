"""A notebook's sandbox on a real stack (MLflow, Alertmanager, a watcher process): whatever it
changed is given back by the next run's setup or by the stack going down, even when nothing
called `undo` (a killed kernel)."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from mlflow.tracking import MlflowClient

from app import stack
from app.processes import live_pid
from app.sandbox import Sandbox, SandboxError
from app.stack import free_port
from tests.helpers import champion_of, isolated

pytestmark = pytest.mark.integration


@pytest.fixture
def shared(server, tmp_path, params):
    """A stack of its own (MLflow shared with other tests, a registered model and Alertmanager
    of its own) with a champion, as a notebook finds it."""
    settings = isolated(server).model_copy(
        update={"state_dir": tmp_path / "state", "alertmanager_port": free_port()}
    )
    alertmanager = stack.service(settings, "alertmanager")
    stack.start(settings, alertmanager)
    champion_of(settings, params)
    yield settings
    stack.stop(settings, alertmanager)


def silence(settings) -> str:
    now = datetime.now(UTC)
    body = {
        "matchers": [{"name": "alertname", "value": ".+", "isRegex": True, "isEqual": True}],
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(minutes=5)).isoformat(),
        "createdBy": "test",
        "comment": "sandbox test",
    }
    return httpx.post(f"{settings.alertmanager_url}/api/v2/silences", json=body).json()["silenceID"]


def silence_state(settings, silence_id: str) -> str:
    found = httpx.get(f"{settings.alertmanager_url}/api/v2/silence/{silence_id}")
    return found.json()["status"]["state"]


def registry_state(settings) -> tuple[dict, list[str]]:
    client = MlflowClient()
    aliases = dict(client.get_registered_model(settings.model_name).aliases)
    return aliases, sorted(v.version for v in client.search_model_versions(
        f"name = '{settings.model_name}'"))  # fmt: skip


def change_everything(settings, params, dvc_repo) -> tuple[Sandbox, stack.Service, str]:
    """What notebook 06 does to a stack, then stops without `undo` (as a killed kernel would):
    a watcher in the sandbox, a silence, a new champion and challenger."""
    sandbox = Sandbox(settings, "notebook-06")
    assert sandbox.open() == []
    clone = settings.model_copy(
        update={
            "root": dvc_repo.root,
            "state_dir": sandbox.folder / "state",
            "retrainer_port": free_port(),
        }
    )
    watcher = stack.service(clone, "retrainer")
    stack.start(clone, watcher)
    silence_id = silence(settings)
    sandbox.silenced(silence_id)
    champion_of(settings, params, C=0.4)  # registered, gated, promoted: a new champion
    return sandbox, stack.service(clone, "retrainer"), silence_id


def test_the_next_run_gives_back_what_a_killed_run_changed(shared, params, dvc_repo):
    before = registry_state(shared)
    sandbox, watcher, silence_id = change_everything(shared, params, dvc_repo)
    pid = live_pid(sandbox.folder / "state" / "retrainer.pid")
    assert pid and registry_state(shared) != before
    assert silence_state(shared, silence_id) == "active"

    undone = Sandbox(shared, "notebook-06").open()  # the next run's setup

    print("given back:", undone)
    assert registry_state(shared) == before
    assert silence_state(shared, silence_id) == "expired"
    assert not stack.is_healthy(watcher) and not process_alive(pid)
    assert any("@champion back to" in line for line in undone)
    assert Sandbox(shared, "notebook-06").ledger["aliases"] == before[0]  # a new ledger


def test_the_stack_going_down_gives_back_what_a_sandbox_changed(shared, params, dvc_repo):
    before = registry_state(shared)
    sandbox, watcher, silence_id = change_everything(shared, params, dvc_repo)
    pid = live_pid(sandbox.folder / "state" / "retrainer.pid")

    stack.down(shared, only=[])  # what `make stack-down` and the test stack's exit run first

    assert registry_state(shared) == before
    assert silence_state(shared, silence_id) == "expired"
    assert not process_alive(pid) and not sandbox.folder.exists()


def test_a_stack_already_down_still_stops_a_sandbox_s_processes(shared, params, dvc_repo):
    before = registry_state(shared)
    sandbox, watcher, silence_id = change_everything(shared, params, dvc_repo)
    pid = live_pid(sandbox.folder / "state" / "retrainer.pid")
    gone = shared.model_copy(update={"mlflow_port": free_port()})  # MLflow does not answer

    stack.down(gone, only=[])

    assert not process_alive(pid)
    assert sandbox.ledger["silences"] == [silence_id]  # kept: the next run gives the rest back
    assert registry_state(shared) != before
    Sandbox(shared, "notebook-06").open()
    assert registry_state(shared) == before
    assert silence_state(shared, silence_id) == "expired"


def process_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    done = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True)
    return done.returncode == 0 and not done.stdout.strip().startswith("Z")


def test_what_cannot_be_given_back_is_named_and_kept_for_later(
    shared, params, dvc_repo, monkeypatch
):
    before = registry_state(shared)
    sandbox, watcher, silence_id = change_everything(shared, params, dvc_repo)
    pid = live_pid(sandbox.folder / "state" / "retrainer.pid")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail at once, not in minutes
    gone = shared.model_copy(update={"mlflow_port": free_port()})

    with pytest.raises(SandboxError, match="the next run of the notebook, `make pipeline`"):
        Sandbox(gone, "notebook-06").undo()

    assert not process_alive(pid)  # stopped first, whatever else fails
    assert sandbox.ledger["silences"] == [silence_id]
    monkeypatch.undo()
    assert Sandbox(shared, "notebook-06").open() and registry_state(shared) == before
