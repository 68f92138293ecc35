"""Progressive delivery on a running API and Prometheus: a bad canary rolled back by itself under
concurrent load with no failed request and sticky clients, and a promotion on live evidence
that moves @champion once."""

from __future__ import annotations

import threading
from collections import defaultdict

import httpx
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from app import registry, stack
from app.data import load_split
from app.poll import wait_for
from app.retraining.promote import live_evidence, promote_on_evidence
from app.serving.rollout import CANARY, MODE, SHARE, STOPPED
from app.stack import free_port
from app.training import train_and_log
from tests.helpers import champion_of, isolated

pytestmark = pytest.mark.integration
CLIENTS = 8  # threads sending at once


@pytest.fixture(scope="module")
def live(server, params, tmp_path_factory):
    """An API and a Prometheus scraping it; a baseline champion, and a good and a bad
    challenger registered (neither is @challenger yet)."""
    settings = isolated(server).model_copy(
        update={
            "api_port": free_port(),
            "prometheus_port": free_port(),
            "alertmanager_port": free_port(),
            "api_poll_seconds": 1.0,
            "state_dir": tmp_path_factory.mktemp("rollout"),
        }
    )
    champion = champion_of(settings, params)
    made = {}
    for name, overrides in (("good", {"C": 0.1}), ("bad", {"C": 1e-5})):
        logged = train_and_log(settings, params, "baseline", overrides=overrides, label=name)
        made[name] = registry.register_challenger(settings, logged.model_uri).version
    MlflowClient().set_registered_model_alias(settings.model_name, registry.CHALLENGER, champion)
    with stack.running(settings, "api", "prometheus"):
        yield settings, champion, made


def follows(settings, version: str | None) -> bool:
    """Whether the API says it follows this challenger (None: no challenger)."""
    metrics = httpx.get(f"{settings.api_url}/metrics").text
    wanted = f'version="{version or 0}"'
    return any(
        line.startswith("api_challenger_info") and wanted in line and line.endswith(" 1.0")
        for line in metrics.splitlines()
    )


def test_a_bad_canary_under_load_is_rolled_back_with_no_failed_request(live):
    settings, champion, made = live
    client = MlflowClient()
    for key, value in ((MODE, CANARY), (SHARE, "0.5")):
        client.set_model_version_tag(settings.model_name, made["bad"], key, value)
    client.set_registered_model_alias(settings.model_name, registry.CHALLENGER, made["bad"])
    wait_for(lambda: follows(settings, made["bad"]), 30, what="the API to follow the canary")
    X, y = load_split(settings.data_dir / "val")
    failures, served = [], defaultdict(list)  # client id -> the versions that answered it
    stop = threading.Event()

    def user(thread: int) -> None:
        with httpx.Client(base_url=settings.api_url, timeout=10) as api:
            for i in range(400):
                if stop.is_set():
                    return
                row = (thread * 400 + i) % len(y)
                who = f"user-{thread}-{i % 12}"
                try:
                    answer = api.post(
                        "/predict", json={"instances": [X[row].tolist()]},
                        headers={"X-Client-Id": who},
                    )  # fmt: skip
                    answer.raise_for_status()
                    made_by = answer.json()
                    served[who].append(made_by["model"]["version"])
                    label = {"prediction_id": made_by["predictions"][0]["id"], "digit": int(y[row])}
                    api.post("/feedback", json=label).raise_for_status()
                except httpx.HTTPError as error:
                    failures.append(repr(error))

    threads = [threading.Thread(target=user, args=(t,)) for t in range(CLIENTS)]
    for thread in threads:
        thread.start()

    def stopped() -> str | None:
        return client.get_model_version(settings.model_name, made["bad"]).tags.get(STOPPED)

    reason = wait_for(stopped, 120, what="the canary's rollback")
    stop.set()
    for thread in threads:
        thread.join()
    assert failures == [], failures[:3]
    assert reason.startswith("accuracy"), reason
    canary_answers = sum(versions.count(made["bad"]) for versions in served.values())
    limit = settings.rollout_window  # the rule judges a window; in-flight requests add a few
    print(f"rolled back after {canary_answers} canary answers: {reason}")
    assert settings.rollout_min_labels <= canary_answers <= limit, canary_answers
    for who, versions in served.items():  # sticky: one model, until the rollback for good
        switched = [i for i in range(1, len(versions)) if versions[i] != versions[i - 1]]
        assert len(switched) <= 1, (who, versions)
        if switched:
            assert versions[-1] == champion, (who, versions)
    assert wait_for(lambda: follows(settings, None), 10)
    metrics = httpx.get(f"{settings.api_url}/metrics").text
    assert "api_canary_rollbacks_total 1.0" in metrics


def test_a_challenger_is_promoted_on_its_shadow_evidence_once(live, params):
    settings, champion, made = live
    client = MlflowClient()
    client.set_registered_model_alias(settings.model_name, registry.CHALLENGER, made["good"])
    wait_for(lambda: follows(settings, made["good"]), 30, what="the API to follow the challenger")
    X, _ = load_split(settings.data_dir / "val")
    with httpx.Client(base_url=settings.api_url, timeout=10) as api:
        for row in np.resize(X, (params.registry.live.min_requests + 20, X.shape[1])):
            answer = api.post("/predict", json={"instances": [row.tolist()]})
            assert answer.json()["model"]["role"] == "champion"  # shadow answers no one

    def seen() -> bool:
        evidence = live_evidence(settings, made["good"], champion)
        return evidence.requests >= params.registry.live.min_requests

    wait_for(seen, 30, what="Prometheus to scrape the shadow's counts")
    promoted, reason = promote_on_evidence(settings, params)
    assert promoted, reason
    assert registry.version_by_alias(settings, registry.CHAMPION).version == made["good"]
    again, why = promote_on_evidence(settings, params)
    assert not again and why.startswith("no challenger to promote")
    tags = client.get_model_version(settings.model_name, made["good"]).tags
    assert tags["live.decision"] == "promoted" and float(tags["live.agreement"]) >= 0.9
    served = lambda: httpx.get(f"{settings.api_url}/model").json()["version"] == made["good"]  # noqa: E731
    wait_for(served, 30, what="the API to serve the promoted challenger")
    assert wait_for(lambda: follows(settings, None), 10)  # @challenger is the champion now
