"""Retraining with real parts: a git + DVC repository, a real MLflow server, the real API and
the watcher as processes. New data is trained, gated and served; anything else changes nothing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter

import httpx
import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from prometheus_client.parser import text_string_to_metric_families

from app import stack
from app.config import Settings
from app.data import switch_version
from app.data.build import fresh_shifted_batch, shifted_batch
from app.data.dvc import dvc, read_pin
from app.data.validate import DataValidationError
from app.poll import wait_for
from app.registry import CHAMPION, version_by_alias
from app.retraining.run import FAILURES, RetrainBusy, read_history, retrain, retrain_lock
from app.stack import free_port
from app.training import MlflowUnavailable
from tests.helpers import isolated

pytestmark = pytest.mark.integration


def commit(settings: Settings, message: str) -> None:
    for args in (["add", "data.dvc", ".gitignore"], ["commit", "--quiet", "-m", message]):
        subprocess.run(["git", *args], cwd=settings.root, check=True)


@pytest.fixture
def repo(server, dvc_repo, params, tmp_path) -> Settings:
    """A git + DVC repository with v1 committed, its own registry name, state and API port."""
    settings = isolated(server).model_copy(
        update={
            "root": dvc_repo.root,
            "dvc_remote_url": dvc_repo.dvc_remote_url,
            "state_dir": tmp_path / "state",
            "api_port": free_port(),
            "retrainer_port": free_port(),
            "api_poll_seconds": 1.0,
            "retrain_poll_seconds": 1.0,
        }
    )
    switch_version(settings, params, 1)
    commit(settings, "data v1")
    return settings


def served_after_retrain(settings: Settings, url: str, seconds: float = 180) -> dict:
    """Wait until the watcher has retrained the data HEAD pins and the API serves its champion;
    its record. Fails at once, with the watcher's reason, when that data was not promoted."""
    md5 = read_pin(settings.dvc_file).md5

    def served() -> dict | None:
        record = next((r for r in read_history(settings)[::-1] if r["data_md5"] == md5), None)
        if record is None:
            return None
        assert record["decision"] == "promoted", f"{record['decision']}: {record['reason']}"
        return record if served_version(url) == record["champion_after"] else None

    try:
        return wait_for(served, seconds, what=f"data {md5} retrained and served")
    except TimeoutError as error:
        status = httpx.get(f"{settings.retrainer_url}/status").json()
        raise AssertionError(f"{error}; the watcher: {status}") from None


def served_version(url: str) -> str:
    return httpx.get(f"{url}/model").json()["version"]


def watching(settings: Settings) -> bool:
    """The watcher has checked HEAD and waits for it to change (its `GET /status`)."""
    return httpx.get(f"{settings.retrainer_url}/status").json()["state"].startswith("watching")


def versions(settings: Settings) -> list[str]:
    found = MlflowClient().search_model_versions(f"name = '{settings.model_name}'")
    return sorted(v.version for v in found)


def test_new_data_is_trained_gated_and_promoted_and_the_same_data_is_skipped(repo, params):
    first = retrain(repo, params)
    assert (first.decision, first.champion_before, first.champion_after) == ("promoted", None, "1")
    assert first.data_version == "v1" and first.metrics["val_accuracy"] >= 0.95
    again = retrain(repo, params)
    assert again.decision == "skipped" and "trained the champion, v1" in again.reason
    assert versions(repo) == ["1"]  # nothing registered twice
    switch_version(repo, params, 2)
    newer = retrain(repo, params, trigger="data")
    assert (newer.decision, newer.champion_before, newer.champion_after) == ("promoted", "1", "2")
    assert version_by_alias(repo, CHAMPION).version == "2"
    history = read_history(repo)
    assert [r["decision"] for r in history] == ["promoted", "skipped", "promoted"]
    assert history[-1]["trigger"] == "data" and history[-1]["seconds"] > 0


def test_bad_data_stops_the_retrain_and_changes_nothing(repo, params):
    retrain(repo, params)
    (repo.data_dir / "train" / "3" / "broken.png").write_bytes(b"not a png")
    dvc("add", "data", repo=repo.root)  # committed to DVC, so only validation can stop it
    with pytest.raises(DataValidationError):
        retrain(repo, params)
    assert version_by_alias(repo, CHAMPION).version == "1" and versions(repo) == ["1"]
    failed = read_history(repo)[-1]
    assert failed["decision"] == "failed" and "DataValidationError" in failed["reason"]


def test_data_that_does_not_match_data_dvc_is_refused(repo, params):
    retrain(repo, params)
    switch_version(repo, params, 2)
    shutil.rmtree(repo.data_dir / "train" / "7")  # data/ no longer what data.dvc pins
    with pytest.raises(Exception, match="does not match data.dvc"):
        retrain(repo, params)
    assert versions(repo) == ["1"]


def test_a_second_retrain_exits_at_once_naming_the_first(repo, params):
    with retrain_lock(repo):
        with pytest.raises(RetrainBusy, match=r"another retrain is running \(pid \d+"):
            retrain(repo, params)
        done = subprocess.run(
            [sys.executable, "-m", "app.retraining"],
            env={**stack.settings_env(repo), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
        )
    assert done.returncode == 75, done.stderr
    assert "another retrain is running" in done.stderr
    assert read_history(repo) == []  # a refused call records nothing


def test_mlflow_down_is_a_clear_error_and_nothing_is_registered(repo, params):
    down = repo.model_copy(update={"mlflow_port": free_port()})
    with pytest.raises(MlflowUnavailable, match="MLflow is not reachable"):
        retrain(down, params)
    assert read_history(repo)[-1]["decision"] == "failed"
    assert versions(repo) == []


def client_loop(url: str, stop: threading.Event, seen: Counter, failures: list, row) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        while not stop.is_set():
            answer = client.post("/predict", json={"instances": [row]})
            if answer.status_code == 200:
                seen[answer.json()["model"]["version"]] += 1
            else:
                failures.append((answer.status_code, answer.text))
            time.sleep(0.01)


def test_a_committed_data_version_is_served_with_no_failed_request(repo, params, v1_arrays):
    """The whole loop with processes: commit v2 → the watcher retrains → the API swaps."""
    retrain(repo, params)  # v1 champion
    url = repo.api_url
    stop, seen, failures = threading.Event(), Counter(), []
    row = v1_arrays[1][0][0].tolist()
    client = threading.Thread(target=client_loop, args=(url, stop, seen, failures, row))
    with stack.running(repo, "api", "retrainer"):
        client.start()
        try:
            wait_for(lambda: watching(repo), 30, what="the watcher to note HEAD (v1) as baseline")
            switch_version(repo, params, 2)
            commit(repo, "data v2")
            committed = time.monotonic()
            served_after_retrain(repo, url)
            served_after = time.monotonic() - committed
            time.sleep(1)  # the clients keep sending to the new model
        finally:
            stop.set()
            client.join()
    print(f"commit of data v2 -> new model served: {served_after:.1f} s")
    assert failures == [] and seen["1"] > 0 and seen["2"] > 0, (failures, seen)
    last = read_history(repo)[-1]
    assert (last["trigger"], last["decision"], last["data_version"]) == ("data", "promoted", "v2")


def test_the_watcher_checks_at_once_on_an_alert_and_exports_what_it_did(repo, params):
    retrain(repo, params)
    with stack.running(repo, "retrainer") as (watcher,):
        alert = {
            "version": "4",
            "status": "firing",
            "receiver": "alert-log",
            "groupKey": "{}",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": "InputDrift"},
                    "startsAt": "2026-11-28T18:00:00Z",
                }
            ],
        }
        answer = httpx.post(f"{repo.retrainer_url}/alerts", json=alert)
        assert answer.json() == {"checking": True}
        wait_for(
            lambda: read_history(repo)[-1]["trigger"] == "alert:InputDrift",
            60,
            what="the watcher to check the data after the alert",
        )
        assert read_history(repo)[-1]["decision"] == "skipped"  # drift alone: no new data
        metrics = httpx.get(f"{repo.retrainer_url}/metrics").text
        assert (
            'retrain_alerts_received_total{alertname="InputDrift",status="firing"} 1.0' in metrics
        )
        assert 'retrain_last_decision{decision="skipped"} 1.0' in metrics
        assert 'retrain_runs_total{decision="promoted"} 1.0' in metrics
        bad = httpx.post(f"{repo.retrainer_url}/alerts", json={"alerts": "nope"})
        assert bad.status_code == 422
    log = stack.log_file(repo, watcher).read_text().splitlines()
    assert all(json.loads(line) for line in log)  # JSON lines only
    assert np.any(["alert received" in line for line in log])


def drift_score_after(url: str, images: np.ndarray) -> float:
    """Send digits one per request, as users do; the API's drift score once they are in."""
    with httpx.Client(base_url=url, timeout=10) as client:
        for row in images:
            assert client.post("/predict", json={"instances": [row.tolist()]}).status_code == 200
        metrics = text_string_to_metric_families(client.get("/metrics").text)
    return next(f.samples[0].value for f in metrics if f.name == "api_input_drift_score")


def test_drift_then_labelled_shifted_data_then_a_champion_that_reads_such_digits(repo, params):
    """Drift fires under v1's champion → the shifted digits, labelled, become data v3 → the
    watcher retrains → the new champion reads fresh shifted digits it never saw."""
    retrain(repo, params)
    url = repo.api_url
    shifted, fresh = shifted_batch(params.data), fresh_shifted_batch(params.data)
    with stack.running(repo, "api", "retrainer"):
        before = drift_score_after(url, shifted.images)
        switch_version(repo, params, 3)
        commit(repo, "data v3: v2 and the labelled shifted digits")
        record = served_after_retrain(repo, url)
        after = drift_score_after(url, shifted.images)
        answer = httpx.post(f"{url}/predict", json={"instances": fresh.images.tolist()}).json()
    new_accuracy = np.mean([p["digit"] for p in answer["predictions"]] == fresh.labels)
    old = mlflow.pyfunc.load_model(f"models:/{repo.model_name}/1").predict(
        fresh.images.astype(np.float32)
    )
    old_accuracy = np.mean(old["digit"].to_numpy() == fresh.labels)
    print(
        f"shifted traffic's drift score: {before:.3f} under v1's champion, {after:.3f} under "
        f"v3's; fresh shifted digits: {old_accuracy:.3f} -> {new_accuracy:.3f}"
    )
    assert before > params.monitoring.drift_threshold and after < before
    assert new_accuracy >= 0.90 and old_accuracy < 0.75
    assert record["data_version"] == "v3"
    print(f"the gate: {record['reason']}")


def test_mlflow_stopping_during_a_retrain_fails_it_and_registers_nothing(repo, params, tmp_path):
    """MLflow dies while the retrain trains: a clear failure, a record, no version at all."""
    own = repo.model_copy(update={"mlflow_port": free_port(), "state_dir": tmp_path / "own"})
    mlflow_service = stack.service(own, "mlflow")
    stack.start(own, mlflow_service)
    outcome: list = []

    def run() -> None:
        try:
            outcome.append(retrain(own, params))
        except Exception as error:  # noqa: BLE001 (what it raised is the point)
            outcome.append(error)

    worker = threading.Thread(target=run)
    try:
        worker.start()
        client = MlflowClient(tracking_uri=own.mlflow_uri)
        wait_for(
            lambda: client.search_runs(
                ["0", *[e.experiment_id for e in client.search_experiments()]]
            ),
            60,
            every=0.2,
            what="a run to start",
        )
        stack.stop(own, mlflow_service)  # mid-training: a run exists, nothing is registered
        worker.join(timeout=120)
        (error,) = outcome
        assert isinstance(error, FAILURES), repr(error)
        failed = read_history(own)[-1]
        assert failed["decision"] == "failed" and failed["champion_after"] is None
        print(f"retrain with MLflow stopped mid-way: {failed['reason'][:160]}")
        stack.start(own, mlflow_service)
        assert MlflowClient(tracking_uri=own.mlflow_uri).search_registered_models() == []
    finally:
        stack.stop(own, mlflow_service)
