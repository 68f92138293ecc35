"""compose/scale.yml, run for real: MLflow on PostgreSQL, three API replicas behind nginx,
Prometheus finding each replica by DNS."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from app.compose import Compose
from app.config import REPO_ROOT
from app.data.images import load_split
from tests.containers.conftest import PORTS, url

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


def psql(project: Compose, query: str) -> str:
    return project.run("exec", "-T", "postgres", "psql", "--username=mlflow", "--dbname=mlflow",
                       "--tuples-only", "--no-align", f"--command={query}").strip()  # fmt: skip


def test_mlflow_keeps_its_runs_and_registry_in_postgres(scaled):
    assert int(psql(scaled, "SELECT count(*) FROM runs")) >= 2  # both families
    aliases = psql(scaled, "SELECT name, alias FROM registered_model_aliases").splitlines()
    assert "digits-classifier|champion" in aliases


def test_three_replicas_behind_the_load_balancer_all_answer_and_are_scraped(scaled):
    assert len(scaled.containers("api")) == REPLICAS
    X, y = load_split(REPO_ROOT / "data" / "val")

    def every_replica_serves() -> bool:  # round robin: 2 x 3 answers cover every replica
        answers = [httpx.get(f"{url('api')}/model") for _ in range(2 * REPLICAS)]
        return all(a.status_code == 200 and a.json()["version"] == "1" for a in answers)

    deadline = time.monotonic() + 30
    while not every_replica_serves():
        assert time.monotonic() < deadline, "a replica does not serve the champion"
        time.sleep(1)
    for start in range(0, 300, 10):  # 30 requests through nginx, round robin
        answer = httpx.post(
            f"{url('api')}/predict", json={"instances": X[start : start + 10].tolist()}
        )
        assert answer.status_code == 200, answer.text
        digits = [p["digit"] for p in answer.json()["predictions"]]
        assert np.mean(np.array(digits) == y[start : start + 10]) >= 0.8

    query = 'sum by (instance) (api_requests_total{route="/predict", status="200"})'
    deadline = time.monotonic() + 30
    while True:
        answer = httpx.get(f"{url('prometheus')}/api/v1/query", params={"query": query}).json()
        counts = {r["metric"]["instance"]: float(r["value"][1]) for r in answer["data"]["result"]}
        if len(counts) == REPLICAS and all(counts.values()) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert len(counts) == REPLICAS, f"Prometheus scrapes {sorted(counts)}"
    assert all(count > 0 for count in counts.values()), f"a replica got no traffic: {counts}"
