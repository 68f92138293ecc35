"""The API as the stack runs it (uvicorn, a real MLflow server): hot swap under load, outages."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections import Counter

import httpx
import pytest

from app import allocator, stack
from app.config import Settings
from app.poll import wait_for
from app.stack import free_port
from tests.helpers import browser_path, champion_of, huge_pages_possible, isolated

pytestmark = pytest.mark.integration
POLL_SECONDS = 1.0
ROW = [float(v) for v in range(16)] * 4


@pytest.fixture
def api(server, params, tmp_path):
    """Settings of a running API process (own port and state) serving champion v1."""
    settings = isolated(server).model_copy(
        update={"api_port": free_port(), "api_poll_seconds": POLL_SECONDS, "state_dir": tmp_path}
    )
    champion_of(settings, params)
    with stack.running(settings, "api"):
        yield settings


def hammer(url: str, stop: threading.Event, seen: Counter, failures: list) -> None:
    """Send /predict requests back to back until told to stop; count versions, keep failures."""
    with httpx.Client(base_url=url, timeout=10) as client:
        while not stop.is_set():
            answer = client.post("/predict", json={"instances": [ROW]})
            if answer.status_code != 200:
                failures.append((answer.status_code, answer.text))
            else:
                seen[answer.json()["model"]["version"]] += 1


def served(url: str) -> str:
    """The version the API serves (`GET /model`)."""
    return httpx.get(f"{url}/model").json()["version"]


def test_promotion_swaps_the_model_under_load_without_a_failed_request(api, params):
    url = api.api_url
    stop, seen, failures = threading.Event(), Counter(), []
    clients = [threading.Thread(target=hammer, args=(url, stop, seen, failures)) for _ in range(4)]
    for thread in clients:
        thread.start()
    try:
        wait_for(lambda: seen["1"] > 0, 10, every=0.1, what="answers from version 1")
        assert champion_of(api, params, C=0.4) == "2"  # as accurate, so it passes the gate
        wait_for(lambda: served(url) == "2", POLL_SECONDS + 10, every=0.1, what="the swap")
        time.sleep(1)  # keep the load on after the swap
    finally:
        stop.set()
        for thread in clients:
            thread.join()
    assert failures == []
    assert seen["1"] > 0 and seen["2"] > 0, seen
    metrics = httpx.get(f"{url}/metrics").text
    assert 'api_model_loads_total{outcome="success"} 2.0' in metrics
    assert "api_model_version 2.0" in metrics


def test_every_line_the_api_writes_is_json(api, params):
    """uvicorn's lines, MLflow's downloads and warnings included: `json.loads` reads them all."""
    url = api.api_url
    champion_of(api, params, C=0.4)  # a second model download, on the poller's thread
    wait_for(lambda: served(url) == "2", POLL_SECONDS + 10, every=0.1, what="the new champion")
    httpx.post(f"{url}/predict", json={"instances": [ROW[:5]]})  # a 422
    httpx.get(f"{url}/nowhere")  # a 404

    def log_records() -> list[dict]:  # raises on the first line that is not JSON
        return [json.loads(line) for line in (api.state_dir / "api.log").read_text().splitlines()]

    records = log_records()  # a request's line is written before its answer goes out: no wait
    messages = [record["message"] for record in records]
    assert any(m.startswith("Started server process") for m in messages)  # uvicorn's own
    assert messages.count("model swapped in") == 2
    assert {r["status"] for r in records if r["message"] == "request"} >= {200, 404, 422}
    # One line per request: the API's own. uvicorn's access line would repeat it in other words.
    assert not [r for r in records if r["logger"] == "uvicorn.access"]
    assert all({"time", "level", "logger"} <= set(record) for record in records)


def test_the_api_runs_on_mimalloc_s_huge_pages(api):
    """As the stack starts it (app/allocator.py): its mappings and its log line say so."""
    pid = stack.running_pid(api, stack.service(api, "api"))
    assert allocator.in_use(pid)["allocator"] == "mimalloc"
    records = [json.loads(line) for line in (api.state_dir / "api.log").read_text().splitlines()]
    (memory,) = [record for record in records if record["message"] == "memory"]
    assert memory["allocator"] == "mimalloc"
    assert (memory["huge_pages_mib"] > 0) == huge_pages_possible(), memory


def test_stopping_mlflow_does_not_stop_predictions(tmp_path, project, params):
    settings = Settings(
        root=project,
        state_dir=tmp_path,
        mlflow_port=free_port(),
        api_port=free_port(),
        api_poll_seconds=POLL_SECONDS,
        _env_file=None,
    )
    mlflow_service, api_service = (stack.service(settings, n) for n in ("mlflow", "api"))
    try:
        stack.start(settings, mlflow_service)
        champion_of(
            isolated(settings).model_copy(update={"model_name": settings.model_name}), params
        )
        stack.start(settings, api_service)
        url = settings.api_url
        stack.stop(settings, mlflow_service)
        time.sleep(POLL_SECONDS * 3)  # let the poller fail a few times
        for _ in range(20):
            answer = httpx.post(f"{url}/predict", json={"instances": [ROW]}, timeout=10)
            assert answer.status_code == 200
        reload = httpx.post(
            f"{url}/admin/reload",
            headers={"Authorization": f"Bearer {stack.admin_token(settings)}"},
            timeout=30,
        )
        assert reload.status_code == 200 and "registry unreachable" in reload.json()["problem"]
        assert httpx.get(f"{url}/ready").status_code == 200
    finally:
        stack.down(settings)


def test_the_docs_page_renders_in_a_real_browser_without_internet(api, tmp_path):
    """Headless Chromium renders /docs: Swagger UI comes from the API itself, not a CDN."""
    browser = browser_path()
    assert browser, "this test needs Chromium: `make system-deps` (Debian/Ubuntu) or see README"
    done = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=15000",
            "--dump-dom",
            f"{api.api_url}/docs",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=120,
    )
    rendered = done.stdout
    # These exist only once Swagger UI's JavaScript has fetched /openapi.json and drawn it.
    assert "Digits model API" in rendered, rendered[-2000:]
    assert 'data-path="/predict/image"' in rendered
    assert "authorize" in rendered.lower()  # the admin routes' bearer scheme
