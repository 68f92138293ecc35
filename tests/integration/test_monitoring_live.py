"""Monitoring for real: Prometheus scrapes the API, alerts reach Alertmanager and the alert log,
and every query behind a dashboard panel or an alert rule returns data.

A stack of its own (free ports, temporary state): the real API, the retraining watcher,
Prometheus, Alertmanager and alert log, on the session's MLflow server. Scrapes and
evaluations come every 5 s (compose/prometheus/prometheus.yml), so the waits here are seconds.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml

from app import loadtest, registry, stack
from app.config import REPO_ROOT, Settings
from app.data import load_split
from app.data.build import shifted_batch
from app.monitoring.alerts import prometheus_alert
from app.poll import wait_for
from app.stack import free_port
from app.training import train_and_log
from tests.helpers import champion_of, isolated

pytestmark = pytest.mark.integration
COMPOSE = REPO_ROOT / "compose"
MONITORING = ("alert-log", "alertmanager", "prometheus")
# Grafana replaces $__rate_interval with at least four scrape intervals; Prometheus needs a
# number: one minute is twelve 5 s scrapes.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "5s", "$__range": "5m"}


def query(settings: Settings, promql: str) -> list[dict]:
    """Run an instant query through Prometheus' HTTP API; fail on a parse or evaluation error."""
    answer = httpx.get(f"{settings.prometheus_url}/api/v1/query", params={"query": promql})
    body = answer.json()
    assert answer.status_code == 200 and body["status"] == "success", (promql, body)
    return body["data"]["result"]


def value(settings: Settings, promql: str) -> float | None:
    result = query(settings, promql)
    return float(result[0]["value"][1]) if result else None


def firing(settings: Settings, alertname: str, state: str = "firing") -> dict | None:
    """Prometheus' alert `alertname` when it is in `state`, else None."""
    alert = prometheus_alert(settings, alertname)
    return alert if alert and alert["state"] == state else None


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) for every target of every committed dashboard."""
    queries = []
    for path in sorted((COMPOSE / "grafana" / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"]
                for variable, replacement in GRAFANA_VARIABLES.items():
                    expr = expr.replace(variable, replacement)
                queries.append((panel["title"], expr))
    return queries


def top_level_comparison(expr: str) -> re.Match | None:
    """The comparison operator of an alert expression, outside (), {} and strings."""
    depth, quote = 0, None
    for index, char in enumerate(expr):
        if quote:
            quote = None if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "({[":
            depth += 1
        elif char in ")}]":
            depth -= 1
        elif depth == 0:
            match = re.compile(r"(==|!=|>=|<=|>|<)(?!\s*bool)").match(expr, index)
            if match and expr[index - 1] not in "=!<>":
                return match
    return None


def rule_queries() -> list[tuple[str, str]]:
    """(alert, PromQL) for every rule, its comparison made a `bool` one.

    `a > 0.05` returns nothing while the alert is quiet; `a > bool 0.05` returns 0 or 1 for
    every series behind it, so "no data" and "not firing" can be told apart.
    """
    queries = []
    for group in yaml.safe_load((COMPOSE / "prometheus" / "rules.yml").read_text())["groups"]:
        for rule in group["rules"]:
            expr = rule["expr"].strip()
            match = top_level_comparison(expr)
            assert match, f"{rule['alert']}: no comparison in {expr!r}"
            queries.append((rule["alert"], f"{expr[: match.end()]} bool{expr[match.end() :]}"))
    return queries


def test_every_alert_rule_becomes_a_bool_query():
    assert dict(rule_queries())["ApiErrorRatioHigh"].endswith("> bool 0.05")
    assert dict(rule_queries())["ApiDown"] == 'up{job="api"} == bool 0'
    assert top_level_comparison('sum(rate(x{status=~"5.."}[5m])) by (le)') is None


def own_ports(server: Settings, state_dir: Path) -> Settings:
    """The session's MLflow, a model name of its own, free ports for everything else."""
    ports = ("api", "prometheus", "alertmanager", "alert_log", "retrainer")
    return isolated(server).model_copy(
        update={f"{name}_port": free_port() for name in ports}
        | {"api_poll_seconds": 1.0, "state_dir": state_dir}
    )


def start_monitoring(settings: Settings) -> None:
    for name in MONITORING:
        stack.start(settings, stack.service(settings, name))


@pytest.fixture(scope="module")
def monitored(server, params, tmp_path_factory):
    """Settings of a running API (champion: a baseline; another in shadow) watched by
    Prometheus + Alertmanager."""
    settings = own_ports(server, tmp_path_factory.mktemp("monitored"))
    champion_of(settings, params)
    # A challenger in shadow (the default for @challenger): the dashboard's rollout panels.
    logged = train_and_log(settings, params, "baseline", overrides={"C": 0.1}, label="shadow")
    registry.register_challenger(settings, logged.model_uri)
    # The retrainer too: the dashboard's retrain panels.
    with stack.running(settings, "api", "retrainer", *MONITORING):
        yield settings


@pytest.fixture(scope="module")
def traffic(monitored, params):
    """Normal traffic (val digits, in random order), then the shifted batch of the data stage.

    Returns the drift score Prometheus recorded for each, and how long the alert took.
    """
    api = httpx.Client(base_url=monitored.api_url, timeout=10)
    val_x, val_y = load_split(monitored.data_dir / "val")
    order = np.random.default_rng(1).permutation(len(val_x))[:250]
    for index, (row, truth) in enumerate(zip(val_x[order], val_y[order], strict=True)):
        playground = {"X-Client": "playground"} if index % 10 == 0 else {}  # as the page marks it
        answer = api.post("/predict", json={"instances": [row.tolist()]}, headers=playground)
        assert answer.status_code == 200
        # ... and each labelled from the field with its true digit, as a reviewer would.
        (made,) = answer.json()["predictions"]
        label = {"prediction_id": made["id"], "digit": int(truth)}
        assert api.post("/feedback", json=label, headers=playground).status_code == 201
    for bad in ({"instances": [[1.0] * 3]}, {"wrong": 1}):  # some 4xx on the charts too
        assert api.post("/predict", json=bad).status_code == 422
    calm = wait_for(
        lambda: value(monitored, "api_input_drift_score{job='api'} >= 0"), 20, what="a first score"
    )
    assert not firing(monitored, "InputDrift", state="pending")
    started = time.monotonic()
    for row in shifted_batch(params.data).images:
        assert api.post("/predict", json={"instances": [row.tolist()]}).status_code == 200
    alert = wait_for(lambda: firing(monitored, "InputDrift"), 90, what="InputDrift to fire")
    seconds_to_fire = time.monotonic() - started
    drifted = value(monitored, "api_input_drift_score")
    print(f"drift score: val traffic {calm:.3f}, shifted {drifted:.3f}; ", end="")
    print(f"InputDrift firing after {seconds_to_fire:.0f} s")
    return {"calm": calm, "drifted": drifted, "alert": alert, "seconds": seconds_to_fire}


def test_val_traffic_stays_below_the_threshold_and_shifted_digits_fire_the_alert(
    traffic, monitored, params
):
    threshold = value(monitored, "api_input_drift_threshold")
    assert threshold == params.monitoring.drift_threshold
    assert traffic["calm"] < threshold < traffic["drifted"]
    assert float(traffic["alert"]["value"]) == pytest.approx(traffic["drifted"], abs=0.05)
    assert traffic["alert"]["annotations"]["summary"].startswith("Input drift score 0.")


def test_the_drift_alert_reaches_alertmanager_the_alert_log_and_the_retrainer(traffic, monitored):
    def in_alertmanager():
        alerts = httpx.get(f"{monitored.alertmanager_url}/api/v2/alerts").json()
        return [a for a in alerts if a["labels"]["alertname"] == "InputDrift"]

    (alert,) = wait_for(in_alertmanager, 30, what="InputDrift in Alertmanager")
    assert alert["status"]["state"] == "active"

    def in_alert_log():
        notifications = httpx.get(f"{monitored.alert_log_url}/alerts")
        return [
            a
            for n in notifications.json()
            for a in n["alerts"]
            if a["labels"]["alertname"] == "InputDrift" and a["status"] == "firing"
        ]

    assert wait_for(in_alert_log, 30, what="the webhook notification")
    log = stack.log_file(monitored, stack.service(monitored, "alert-log")).read_text()
    lines = [json.loads(line) for line in log.splitlines()]
    assert any(line.get("alertname") == "InputDrift" for line in lines)

    def at_the_retrainer():  # Alertmanager's second webhook: the retraining watcher
        metrics = httpx.get(f"{monitored.retrainer_url}/metrics").text
        return 'retrain_alerts_received_total{alertname="InputDrift",status="firing"}' in metrics

    assert wait_for(at_the_retrainer, 30, what="the retraining watcher to receive the alert")


def test_right_labels_give_a_live_accuracy_and_a_run_of_wrong_ones_fires_model_degraded(
    traffic, monitored, params
):
    accuracy = wait_for(
        lambda: value(monitored, "api_live_accuracy >= 0"), 20, what="a live accuracy"
    )
    assert accuracy >= value(monitored, "api_live_accuracy_threshold") + 0.1, accuracy
    assert value(monitored, "api_live_labels") == 200  # the window: the last 200 labels
    assert not firing(monitored, "ModelDegraded", state="pending")
    assert not firing(monitored, "ModelDegraded")
    # Then 100 answers that reviewers say were wrong: half the window.
    api = httpx.Client(base_url=monitored.api_url, timeout=10)
    val_x, _ = load_split(monitored.data_dir / "val")
    for row in val_x[:100]:
        (made,) = api.post("/predict", json={"instances": [row.tolist()]}).json()["predictions"]
        wrong = {"prediction_id": made["id"], "digit": (made["digit"] + 1) % 10}
        assert api.post("/feedback", json=wrong).status_code == 201
    started = time.monotonic()
    alert = wait_for(lambda: firing(monitored, "ModelDegraded"), 120, what="ModelDegraded")
    print(f"ModelDegraded firing {time.monotonic() - started:.0f} s after the wrong labels")
    assert float(alert["value"]) <= accuracy / 2 + 0.05  # 100 of the last 200 are wrong
    assert alert["annotations"]["summary"].startswith("Live accuracy")


@pytest.mark.parametrize("title, promql", dashboard_queries())
def test_every_dashboard_query_returns_data(traffic, monitored, title, promql):
    assert query(monitored, promql), f"{title}: no series for {promql}"


@pytest.mark.parametrize("alert, promql", rule_queries())
def test_every_alert_rule_has_data_behind_it(traffic, monitored, alert, promql):
    assert query(monitored, promql), f"{alert}: no series for {promql}"


def test_playground_traffic_is_a_series_of_its_own(traffic, monitored):
    (promql,) = [q for title, q in dashboard_queries() if title == "Playground traffic"]
    clients = {series["metric"]["client"] for series in query(monitored, promql)}
    assert clients == {"api", "playground"}


def test_the_dashboard_has_queries():
    assert len(dashboard_queries()) >= 10  # a missing or empty dashboard fails here


def test_scrapes_during_a_model_swap_always_answer(traffic, monitored, params):
    """Every /metrics answer during a promotion is complete: the drift gauges never vanish."""
    url = f"{monitored.api_url}/metrics"
    promoted = float(champion_of(monitored, params, C=0.4))
    answers = []

    def swapped() -> bool:  # every answer is kept: each must be complete
        answers.append(httpx.get(url))
        return f"api_model_version {promoted}" in answers[-1].text

    wait_for(swapped, 15, every=0, what="the swap to show in /metrics")
    assert all(a.status_code == 200 for a in answers)
    assert all("api_input_drift_score" in a.text for a in answers)
    assert f"api_model_version {promoted}" in answers[-1].text, "the swap never happened"
    # The new model starts with an empty window: its predictions are its own.
    assert "api_drift_window_inputs 0.0" in answers[-1].text


def test_an_api_restart_is_the_only_gap(traffic, monitored):
    """`up` is recorded at every scrape; it is 0 only while the API is down."""
    api = stack.service(monitored, "api")
    wait_for(lambda: value(monitored, 'up{job="api"}') == 1, 20, what="the API to be up")
    stopped_at = time.time()
    stack.stop(monitored, api)
    wait_for(lambda: value(monitored, 'up{job="api"}') == 0, 20, what="Prometheus to see it down")
    stack.start(monitored, api)
    back_at = time.time()
    wait_for(lambda: value(monitored, 'up{job="api"}') == 1, 20, what="Prometheus to see it back")

    def scraped_at() -> float:
        return value(monitored, 'timestamp(up{job="api"})') or 0

    wait_for(lambda: scraped_at() > back_at + 5, 20, what="a scrape more than 5 s after it is back")
    answer = httpx.get(
        f"{monitored.prometheus_url}/api/v1/query_range",
        params={"query": 'up{job="api"}', "start": stopped_at - 30, "end": time.time(), "step": 5},
    ).json()
    (series,) = answer["data"]["result"]
    samples = [(float(t), float(v)) for t, v in series["values"]]
    assert len(samples) >= 8, samples  # a sample every step: no hole in the series
    down = [t for t, v in samples if v == 0]
    assert down and all(stopped_at - 5 <= t <= back_at + 10 for t in down), (samples, back_at)
    assert value(monitored, "api_model_version") >= 1  # it came back with its model


def test_prometheus_first_then_an_api_without_a_model(server, params, tmp_path):
    """Prometheus starts before the API; the API starts before any champion exists."""
    settings = own_ports(server, tmp_path)
    try:
        start_monitoring(settings)
        wait_for(lambda: value(settings, 'up{job="api"}') == 0, 20, what="the API to be seen down")
        stack.start(settings, stack.service(settings, "api"))
        wait_for(lambda: value(settings, 'up{job="api"}') == 1, 20, what="the API to be scraped")
        assert value(settings, "api_model_version") == 0
        pending = wait_for(
            lambda: firing(settings, "NoModelLoaded", "pending"), 20, what="NoModelLoaded"
        )
        assert "has no model to serve" in pending["annotations"]["summary"]
        assert httpx.get(f"{settings.api_url}/ready").status_code == 503
        champion_of(settings, params)
        wait_for(
            lambda: value(settings, "api_model_version") == 1, 30, what="the model to be scraped"
        )
        wait_for(
            lambda: not firing(settings, "NoModelLoaded", "pending"), 20, what="the alert to clear"
        )
    finally:
        stack.down(settings, only=[s for s in stack.services(settings) if s.name != "mlflow"])


def test_the_native_configs_differ_from_compose_only_in_addresses(monitored):
    for source in (
        COMPOSE / "prometheus" / "prometheus.yml",
        COMPOSE / "alertmanager" / "alertmanager.yml",
    ):
        native = Path(monitored.state_dir / source.parent.name / source.name).read_text()
        for compose_address, native_address in stack.compose_addresses(monitored).items():
            native = native.replace(native_address, compose_address)
        assert native == source.read_text()


def test_a_load_test_and_prometheus_agree_on_the_same_requests(traffic, monitored):
    """Locust from outside, the API's histogram from inside (app/loadtest), over the same
    requests; last in this file: its load comes after what the other tests read."""
    test = loadtest.run(monitored, users=4, rate=10, seconds=20)
    for route in loadtest.ROUTES:
        client, server = test.client[route], test.server[route]
        assert client.requests == server.requests > 100, route
        assert client.failures == server.failures == 0, route
        assert client.mean > server.mean, route  # a client never waits less than the server works
    compared = loadtest.compare(test)
    assert [row.figure for row in compared] == ["mean", "p50", "p95"]
    assert all(row.agrees for row in compared), compared
