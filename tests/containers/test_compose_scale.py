"""compose/scale.yml, run for real: MLflow on PostgreSQL, three API replicas behind nginx
sharing one feedback store there, Prometheus finding each replica by DNS, and a canary the
replicas route alike and roll back together."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from app import registry
from app.compose import Compose
from app.config import REPO_ROOT, Settings, load_params
from app.data.images import load_split
from app.poll import wait_for
from app.serving.rollout import CANARY, MODE, SHARE, STOPPED, Rollout, canary_serves
from app.training import train_and_log
from app.training.tracking import setup_mlflow
from tests.helpers import PORTS, url

pytestmark = pytest.mark.compose
FILES = (REPO_ROOT / "docker-compose.yml", REPO_ROOT / "compose" / "scale.yml")
SERVICES = [
    "postgres",
    "mlflow",
    "api",
    "lb",
    "retrainer",
    "alert-log",
    "prometheus",
    "alertmanager",
]  # fmt: skip  (and grafana where it can be pulled)
REPLICAS = 3


@pytest.fixture(scope="module")
def scaled(images) -> Iterator[Compose]:
    project = Compose(project="workbook-compose-scale", files=FILES, env=images | PORTS)
    project.run("down", "--volumes", "--remove-orphans", check=False)
    start = time.monotonic()
    try:
        project.run("up", "-d", *SERVICES, timeout=600)
        project.wait_healthy(SERVICES)
        print(f"\nscale: all healthy after {time.monotonic() - start:.0f} s")
        print(project.run("run", "--rm", "trainer", timeout=900)[-300:])
        yield project
    finally:
        project.run("down", "--volumes", "--remove-orphans", check=False)


def psql(project: Compose, query: str, database: str = "mlflow") -> str:
    return project.run("exec", "-T", "postgres", "psql", "--username=mlflow",
                       f"--dbname={database}", "--tuples-only", "--no-align",
                       f"--command={query}").strip()  # fmt: skip


def test_mlflow_keeps_its_runs_and_registry_in_postgres(scaled):
    assert int(psql(scaled, "SELECT count(*) FROM runs")) >= 2  # both families
    aliases = psql(scaled, "SELECT name, alias FROM registered_model_aliases").splitlines()
    assert "digits-classifier|champion" in aliases


def prometheus(query: str) -> dict[str, float]:
    """An instant query's result, by instance."""
    answer = httpx.get(f"{url('prometheus')}/api/v1/query", params={"query": query}).json()
    return {r["metric"]["instance"]: float(r["value"][1]) for r in answer["data"]["result"]}


def wait_ready(project: Compose) -> list[dict]:
    """Every replica, once each has loaded the champion: asked inside it, not via nginx."""
    replicas = project.containers("api")
    assert len(replicas) == REPLICAS
    for replica in replicas:
        ready = ["docker", "exec", replica["Id"], "python", "/usr/local/bin/healthcheck.py",
                 "http://localhost:8000/ready"]  # fmt: skip
        wait_for(
            lambda ready=ready: subprocess.run(ready, capture_output=True).returncode == 0,
            60,
            every=1,
            what=f"{replica['Name']} to load the champion",
        )
    return replicas


def test_three_replicas_behind_the_load_balancer_all_answer_and_are_scraped(scaled):
    wait_ready(scaled)
    X, y = load_split(REPO_ROOT / "data" / "val")
    query = 'sum by (instance) (api_requests_total{route="/predict", status="200"})'

    def every_replica_scraped() -> dict[str, float] | None:
        """Send 100 digits; the per-replica counts once Prometheus has scraped all of them."""
        for start in range(0, 100, 10):
            rows = X[start : start + 10]
            answer = httpx.post(f"{url('api')}/predict", json={"instances": rows.tolist()})
            assert answer.status_code == 200, answer.text
            digits = np.array([p["digit"] for p in answer.json()["predictions"]])
            assert np.mean(digits == y[start : start + 10]) >= 0.8
        counts = prometheus(query)
        return counts if len(counts) == REPLICAS else None

    # nginx skips a replica for 10 s after an error: keep sending until all serve
    wait_for(every_replica_scraped, 60, every=2, what="requests scraped from every replica")
    assert list(prometheus('up{job="api"}').values()) == [1.0] * REPLICAS


def answered_by(project: Compose, requests: list[str]) -> dict[str, str]:
    """Which replica answered each request through nginx (its X-Request-ID): from their logs."""

    def read_logs() -> dict[str, str] | None:
        replica_of = {}
        for replica in project.containers("api"):
            logs = subprocess.run(["docker", "logs", replica["Id"]], capture_output=True,
                                  text=True, check=True).stdout  # fmt: skip
            for line in logs.splitlines():
                record = json.loads(line) if line.startswith("{") else {}
                if "request_id" in record:
                    replica_of[record["request_id"]] = replica["Name"]
        return replica_of if set(requests) <= set(replica_of) else None

    return wait_for(read_logs, 10, what="every request in a replica's log")


def test_the_replicas_share_one_feedback_store_in_postgres(scaled):
    """Any replica labels what another predicted, refuses a second label, and keeps them all
    across restarts: the three write one database, not a file each."""
    replicas = wait_ready(scaled)
    # They all created the tables at once, on an empty database, and none failed doing it
    assert [replica["RestartCount"] for replica in replicas] == [0] * REPLICAS

    def post(path: str, body: dict) -> tuple[int, dict, str]:
        """Through nginx: the status, the answer and the request id the replica logged."""
        answer = httpx.post(f"{url('api')}{path}", json=body)
        if answer.status_code == 502:  # nginx's own page: no replica took it
            return 502, {"error": answer.text}, ""
        return answer.status_code, answer.json(), answer.headers["x-request-id"]

    X, _ = load_split(REPO_ROOT / "data" / "val")
    made = {}  # prediction id -> (its digit, the request that made it)
    for row in X[:10]:  # not a multiple of 3: nginx's round robin labels each on another replica
        status, answer, request = post("/predict", {"instances": [row.tolist()]})
        assert status == 200, answer
        made[answer["predictions"][0]["id"]] = (answer["predictions"][0]["digit"], request)
    ids = ", ".join(f"'{i}'" for i in made)

    def count(table: str, column: str) -> int:
        return int(psql(scaled, f"SELECT count(*) FROM {table} WHERE {column} IN ({ids})",
                        database="feedback"))  # fmt: skip

    # Each replica's writer stores its predictions within a quarter of a second, in one table
    wait_for(lambda: count("predictions", "id") == len(made), 30, what="the predictions stored")

    def label_all(shift: int) -> dict[str, tuple[int, str]]:
        """Label each prediction its digit + shift, through nginx: the status and request id."""
        answers = {}
        for prediction_id, (digit, _) in made.items():
            body = {"prediction_id": prediction_id, "digit": (digit + shift) % 10}
            status, _, request = post("/feedback", body)
            answers[prediction_id] = (status, request)
        return answers

    labelled, refused = label_all(0), label_all(1)
    assert {status for status, _ in labelled.values()} == {201}, labelled
    assert {status for status, _ in refused.values()} == {409}, refused
    assert count("labels", "prediction_id") == len(made)

    requests = [request for answers in (made, labelled, refused) for _, request in answers.values()]
    replica_of = answered_by(scaled, requests)
    assert len({replica_of[request] for _, request in made.values()}) == REPLICAS
    elsewhere = [i for i, (_, request) in labelled.items()
                 if replica_of[request] != replica_of[made[i][1]]]  # fmt: skip
    assert elsewhere, "every label went to the replica that made the prediction"
    assert len({replica_of[request] for _, request in refused.values()}) == REPLICAS

    scaled.run("restart", "api", timeout=180)
    scaled.wait_healthy(["api", "lb"])
    # nginx takes a replica out for 10 s after it failed (its health checks did, meanwhile)
    first, (digit, _) = next(iter(made.items()))
    body = {"prediction_id": first, "digit": digit}
    wait_for(lambda: post("/feedback", body)[0] != 502, 30, every=1, what="nginx to pass it on")
    again = label_all(0)
    assert {status for status, _ in again.values()} == {200}, again  # there already: no change
    assert {status for status, _ in label_all(1).values()} == {409}
    print(f"\nfeedback: {len(elsewhere)} of {len(made)} labelled on another replica than made")


def every_replica_follows(version: str) -> bool:
    """Whether Prometheus last saw each replica follow this challenger version ("0": none)."""
    answer = httpx.get(
        f"{url('prometheus')}/api/v1/query", params={"query": "api_challenger_info == 1"}
    ).json()
    followed = [r["metric"]["version"] for r in answer["data"]["result"]]
    return followed == [version] * REPLICAS


def test_a_bad_canary_on_three_replicas_is_rolled_back_with_no_failed_request(scaled):
    """Progressive delivery past one machine. Every replica routes a client alike (the rule is
    a hash of the client and the version, not a replica's memory); under concurrent load, the
    first replica whose window condemns the canary stops it and tags the version, and the
    others follow at their next poll (or judge it themselves first), with no failed request."""
    wait_ready(scaled)
    settings = Settings(mlflow_tracking_uri=url("mlflow"), _env_file=None)
    setup_mlflow(settings)
    client = MlflowClient()
    champion = client.get_model_version_by_alias(settings.model_name, registry.CHAMPION).version
    logged = train_and_log(settings, load_params(), "baseline", overrides={"C": 1e-5}, label="bad")
    bad = registry.register_challenger(settings, logged.model_uri).version
    share = 0.5
    for key, value in ((MODE, CANARY), (SHARE, str(share))):
        client.set_model_version_tag(settings.model_name, bad, key, value)
    wait_for(lambda: every_replica_follows(bad), 60, every=1,
             what="every replica to follow the canary")  # fmt: skip

    X, y = load_split(REPO_ROOT / "data" / "val")
    rule, routed = Rollout(CANARY, share, None), set()
    with httpx.Client(base_url=url("api"), timeout=30) as api:
        for who in [f"sticky-{i}" for i in range(30)]:  # 6 requests: each replica twice
            versions = set()
            for _ in range(2 * REPLICAS):
                answer = api.post("/predict", json={"instances": [X[0].tolist()]},
                                  headers={"X-Client-Id": who})  # fmt: skip
                assert answer.status_code == 200, answer.text
                versions.add(answer.json()["model"]["version"])
            expected = bad if canary_serves(rule, who, bad) else champion
            assert versions == {expected}, (who, versions)
            routed.add(expected)
    assert routed == {bad, champion}  # the 30 clients fell on both sides of the share

    failures, served = [], defaultdict(list)  # client id -> the versions that answered it
    stop = threading.Event()

    def user(thread: int) -> None:
        """Predict, and label each answer half a second later, as a person clicks "Right?": a
        replica stores what it predicted within 50 ms, and another may get the label."""
        pending: deque[tuple[float, dict]] = deque()
        with httpx.Client(base_url=url("api"), timeout=30) as api:
            for i in range(600):
                if stop.is_set():
                    return
                row, who = (thread * 600 + i) % len(y), f"user-{thread}-{i % 12}"
                try:
                    answer = api.post("/predict", json={"instances": [X[row].tolist()]},
                                      headers={"X-Client-Id": who})  # fmt: skip
                    answer.raise_for_status()
                    made = answer.json()
                    served[who].append(made["model"]["version"])
                    label = {"prediction_id": made["predictions"][0]["id"], "digit": int(y[row])}
                    pending.append((time.monotonic() + 0.5, label))
                    while pending and pending[0][0] <= time.monotonic():
                        api.post("/feedback", json=pending.popleft()[1]).raise_for_status()
                except httpx.HTTPError as error:
                    failures.append(repr(error))

    threads = [threading.Thread(target=user, args=(t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    try:
        stopped = lambda: client.get_model_version(settings.model_name, bad).tags.get(STOPPED)  # noqa: E731
        reason = wait_for(stopped, 180, every=0.5, what="the canary's rollback")
        wait_for(lambda: every_replica_follows("0"), 60, every=1,
                 what="every replica to drop the canary")  # fmt: skip
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == [], failures[:3]
    assert reason.startswith("accuracy"), reason
    canary_answers = sum(versions.count(bad) for versions in served.values())
    # Each replica judges its own window; the tag stops the slower ones at their next poll
    assert canary_answers <= REPLICAS * settings.rollout_window, canary_answers
    assert all(versions[-1] == champion for versions in served.values()), served
    rollbacks = sum(prometheus("api_canary_rollbacks_total").values())
    answers = sum(map(len, served.values()))
    print(f"\ncanary on {REPLICAS} replicas: rolled back after {canary_answers} canary answers "
          f"of {answers}, by {rollbacks:.0f} replica(s) on their own: {reason}")  # fmt: skip
    assert rollbacks >= 1
