"""What the API tells about itself: Prometheus metrics and one JSON log line per request."""

from __future__ import annotations

import logging
import sys
import time
import uuid
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from pythonjsonlogger.json import JsonFormatter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "x-request-id"
access_log = logging.getLogger("app.serving.access")
log = logging.getLogger("app.serving")


def setup_json_logging() -> None:
    """JSON lines on stdout for the API's own loggers (what Loki or `jq` reads)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    for logger in (log, access_log):
        logger.handlers = [handler]
        logger.setLevel(logging.INFO)
        logger.propagate = False


@dataclass
class Metrics:
    """The API's Prometheus metrics, in a registry of its own (one per app instance)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "api_requests", "HTTP requests answered", ["route", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "api_request_duration_seconds",
            "Time to answer a request",
            ["route", "method", "status"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.in_flight = Gauge("api_requests_in_flight", "Requests being answered", registry=r)
        self.predictions = Counter(
            "api_predictions", "Digits predicted, by digit", ["digit"], registry=r
        )
        self.confidence = Histogram(
            "api_prediction_confidence",
            "Probability of the predicted digit",
            buckets=(0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0),
            registry=r,
        )
        self.model_version = Gauge(
            "api_model_version", "Registry version of the served model (0: none)", registry=r
        )
        self.model_info = Gauge(
            "api_model_info",
            "The served model (value 1)",
            ["name", "version", "run_id"],
            registry=r,
        )
        self.model_loads = Counter(
            "api_model_loads", "Model loads, by outcome", ["outcome"], registry=r
        )
        self.model_loads.labels("success")
        self.model_loads.labels("failure")

    def served(self, name: str, version: str, run_id: str) -> None:
        self.model_info.clear()
        self.model_info.labels(name, version, run_id).set(1)
        self.model_version.set(float(version))


class Telemetry:
    """Pure ASGI middleware: request id, latency, status, in-flight count, one log line.

    Routes add to `scope["state"]["log"]` what belongs in the line (model version, digits).
    """

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        request_id = headers.get(REQUEST_ID_HEADER.encode(), b"").decode()[:64] or uuid.uuid4().hex
        extra: dict = {}
        scope.setdefault("state", {})["log"] = extra
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER.encode(), request_id.encode()),
                ]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.metrics.in_flight.dec()
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")  # the template, not the URL
            labels = (route, scope["method"], str(status))
            self.metrics.requests.labels(*labels).inc()
            self.metrics.latency.labels(*labels).observe(seconds)
            access_log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope["method"],
                    "route": route,
                    "status": status,
                    "latency_ms": round(seconds * 1000, 3),
                    **extra,
                },
            )
