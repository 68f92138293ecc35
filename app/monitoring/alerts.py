"""Asking Prometheus about an alert, as the notebooks and the tests do."""

from __future__ import annotations

import httpx

from app.config import Settings


def prometheus_alert(settings: Settings, name: str) -> dict | None:
    """Prometheus' alert `name` as `GET /api/v1/alerts` gives it (pending or firing: its
    `state`), None while it is inactive."""
    alerts = httpx.get(f"{settings.prometheus_url}/api/v1/alerts").json()["data"]["alerts"]
    return next((a for a in alerts if a["labels"]["alertname"] == name), None)
