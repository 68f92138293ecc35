"""Asking Prometheus through its HTTP API, as the notebooks, the tests and the tools do: a
query's series, an alert's state."""

from __future__ import annotations

import httpx

from app.config import Settings


def query(prometheus: str, expression: str, at: float | None = None) -> list[dict]:
    """The series a PromQL expression gives at Unix time `at` (None: now), from the Prometheus
    at URL `prometheus`: each with its labels (`metric`) and `value`, a (time, text) pair."""
    asked: dict[str, str | float] = {"query": expression}
    if at is not None:
        asked["time"] = at
    answer = httpx.get(f"{prometheus}/api/v1/query", params=asked, timeout=10)
    answer.raise_for_status()
    return answer.json()["data"]["result"]


def prometheus_alert(settings: Settings, name: str) -> dict | None:
    """Prometheus' alert `name` as `GET /api/v1/alerts` gives it (pending or firing: its
    `state`), None while it is inactive."""
    alerts = httpx.get(f"{settings.prometheus_url}/api/v1/alerts").json()["data"]["alerts"]
    return next((a for a in alerts if a["labels"]["alertname"] == name), None)
