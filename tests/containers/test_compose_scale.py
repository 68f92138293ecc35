"""compose/scale.yml, run for real: MLflow on PostgreSQL, three API replicas behind nginx,
Prometheus finding each replica by DNS."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from app.compose import Compose
from app.config import REPO_ROOT
from app.data.images import load_split
from app.poll import wait_for
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


def psql(project: Compose, query: str) -> str:
    return project.run("exec", "-T", "postgres", "psql", "--username=mlflow", "--dbname=mlflow",
                       "--tuples-only", "--no-align", f"--command={query}").strip()  # fmt: skip


def test_mlflow_keeps_its_runs_and_registry_in_postgres(scaled):
    assert int(psql(scaled, "SELECT count(*) FROM runs")) >= 2  # both families
    aliases = psql(scaled, "SELECT name, alias FROM registered_model_aliases").splitlines()
    assert "digits-classifier|champion" in aliases


def prometheus(query: str) -> dict[str, float]:
    """An instant query's result, by instance."""
    answer = httpx.get(f"{url('prometheus')}/api/v1/query", params={"query": query}).json()
    return {r["metric"]["instance"]: float(r["value"][1]) for r in answer["data"]["result"]}


def test_three_replicas_behind_the_load_balancer_all_answer_and_are_scraped(scaled):
    replicas = scaled.containers("api")
    assert len(replicas) == REPLICAS
    for replica in replicas:  # each has loaded the champion: asked inside it, not via nginx
        ready = ["docker", "exec", replica["Id"], "python", "/usr/local/bin/healthcheck.py",
                 "http://localhost:8000/ready"]  # fmt: skip
        wait_for(
            lambda ready=ready: subprocess.run(ready, capture_output=True).returncode == 0,
            60,
            every=1,
            what=f"{replica['Name']} to load the champion",
        )

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
