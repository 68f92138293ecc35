"""Where Alertmanager sends alerts until something acts on them: a webhook that logs them.

`uvicorn app.monitoring.alert_log:create_app --factory` (the stack runs exactly that).
POST /alerts takes Alertmanager's webhook payload (version 4) and writes one JSON log line
per alert; GET /alerts returns the most recent notifications, newest last.
"""

from __future__ import annotations

import logging
from collections import deque
from datetime import UTC, datetime

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field

from app.log import setup_json_logging

log = logging.getLogger("app.monitoring.alerts")
KEEP = 100  # notifications GET /alerts returns


class Alert(BaseModel):
    """One alert of an Alertmanager notification (webhook format, version 4)."""

    status: str  # "firing" or "resolved"
    labels: dict[str, str]
    annotations: dict[str, str] = {}
    startsAt: datetime  # noqa: N815 (Alertmanager's field names)
    endsAt: datetime | None = None  # noqa: N815
    fingerprint: str = ""


class Notification(BaseModel):
    """Alertmanager's webhook payload: one group of alerts."""

    version: str
    status: str
    receiver: str
    groupKey: str  # noqa: N815
    alerts: list[Alert] = Field(min_length=1)
    # Set here when the notification arrives (Alertmanager does not send it): this server's
    # clock, so a reader can time the alert's way without a clock of its own.
    receivedAt: datetime | None = None  # noqa: N815


def create_app() -> FastAPI:
    """The alert log: `POST /alerts` (Alertmanager's webhook), `GET /alerts`, `GET /health`."""
    setup_json_logging()
    app = FastAPIOffline(title="Alert log", description=__doc__, version="1.0")
    received: deque[Notification] = deque(maxlen=KEEP)

    @app.post("/alerts")
    async def receive(notification: Notification) -> dict[str, int]:
        """Log each alert of a notification as one JSON line."""
        notification.receivedAt = datetime.now(UTC)
        received.append(notification)
        for alert in notification.alerts:
            log.warning(
                "alert %s",
                alert.status,
                extra={
                    "alertname": alert.labels.get("alertname"),
                    "status": alert.status,
                    "severity": alert.labels.get("severity"),
                    "summary": alert.annotations.get("summary"),
                    "starts_at": alert.startsAt.isoformat(),
                    "labels": alert.labels,
                },
            )
        return {"logged": len(notification.alerts)}

    @app.get("/alerts")
    async def recent() -> list[Notification]:
        """The last notifications received, oldest first."""
        return list(received)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
