"""What the API tells about itself: Prometheus metrics and one JSON log line per request."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, NamedTuple, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.ids import random_hex
from app.log import JsonLines
from app.monitoring.drift import DriftMonitor

if TYPE_CHECKING:
    from app.serving.model_store import ServedModel

REQUEST_ID_HEADER = "x-request-id"
# The playground page marks its requests; any other value counts as "api" (a label never holds
# what a client wrote: that would let anyone create series without end).
CLIENT_HEADER, CLIENTS = "x-client", ("playground",)
access_log = logging.getLogger("app.serving.access")
access_lines = JsonLines(access_log)  # the line a request, without `logging`'s own work
Metric = TypeVar("Metric", bound=MetricWrapperBase)


class Children(Generic[Metric]):
    """A labelled metric's children, each looked up once: `labels()` checks and converts its
    values and takes a lock on every call, and a request made five such calls (4 % of its time
    under load, py-spy). Label values here are few (routes, statuses, roles, versions, digits)."""

    def __init__(self, metric: Metric):
        self.metric = metric
        self.found: dict[tuple[str, ...], Metric] = {}

    def __call__(self, *values: str) -> Metric:
        child = self.found.get(values)
        if child is None:
            child = self.found[values] = self.metric.labels(*values)
        return child


@dataclass
class Metrics:
    """The API's Prometheus metrics, in a registry of its own (one per app instance)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "api_requests",
            "HTTP requests answered, by client: the playground page or any other",
            ["route", "method", "status", "client"],
            registry=r,
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
            "The served model (value 1) and the runtime that computes its answers",
            ["name", "version", "run_id", "runtime"],
            registry=r,
        )
        self.model_loads = Counter(
            "api_model_loads", "Model loads, by outcome", ["outcome"], registry=r
        )
        self.model_loads.labels("success")
        self.model_loads.labels("failure")
        self.feedback = Counter(
            "api_feedback_labels",
            "Labels received on POST /feedback, by model version, client and outcome: whether "
            "the model had predicted the digit (correct) or not (wrong)",
            ["model_version", "client", "outcome"],
            registry=r,
        )

        # Progressive delivery (app/serving/rollout.py).
        self.role_requests = Counter(
            "api_role_requests",
            "Requests answered by each role's model: champion or challenger (canary); outcome "
            "`fallback` is a challenger that failed and was answered for by the champion",
            ["role", "model_version", "outcome"],
            registry=r,
        )
        self.model_seconds = Histogram(
            "api_model_seconds",
            "Time the model took on a request, by role",
            ["role"],
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1),
            registry=r,
        )
        self.challenger_info = Gauge(
            "api_challenger_info",
            "The challenger this API follows (value 1; version 0 and mode none: there is none), "
            "its mode and its canary share",
            ["version", "mode", "share"],
            registry=r,
        )
        self.shadow = Counter(
            "api_shadow_predictions",
            "Predictions the challenger made in shadow, by whether it agreed with the champion",
            ["challenger_version", "agreement"],
            registry=r,
        )
        self.shadow_dropped = Counter(
            "api_shadow_dropped",
            "Requests the shadow queue was too full to score (the challenger fell behind)",
            registry=r,
        )
        self.shadow_labels = Counter(
            "api_shadow_labels",
            "Labels of predictions the challenger also made in shadow, by whether it was right",
            ["challenger_version", "outcome"],
            registry=r,
        )
        self.rollbacks = Counter(
            "api_canary_rollbacks",
            "Canaries this API rolled back by rule (CanaryRolledBack; the version and the reason "
            "are in the log line and on the version's rollout.stopped tag)",
            registry=r,
        )
        # What every request counts in, by label values: `self.requests_by(route, ...).inc()`.
        self.requests_by = Children(self.requests)
        self.latency_by = Children(self.latency)
        self.predictions_by = Children(self.predictions)
        self.role_requests_by = Children(self.role_requests)
        self.model_seconds_by = Children(self.model_seconds)
        self.challenger(None, None)

    def challenger(self, version: str | None, rollout) -> None:
        """Record which challenger this API follows now, and how."""
        self.challenger_info.clear()
        if version is None or rollout is None:
            self.challenger_info.labels("0", "none", "0").set(1)
        else:
            share = f"{rollout.share:g}" if rollout.mode == "canary" else "0"
            self.challenger_info.labels(version, rollout.mode, share).set(1)

    def watch_drift(self, current: Callable[[], DriftMonitor | None]) -> None:
        """Export the drift gauges of whatever `current()` returns at each scrape."""
        self.registry.register(DriftGauges(current))

    def watch_live_accuracy(self, current: Callable[[], LiveScore]) -> None:
        """Export the served model's live accuracy, `current()` at each scrape."""
        self.registry.register(LiveAccuracy(current))

    def served(self, model: ServedModel) -> None:
        """Record which model version now serves, and how."""
        self.model_info.clear()
        self.model_info.labels(model.name, model.version, model.run_id, model.runtime).set(1)
        self.model_version.set(float(model.version))


class DriftGauges(Collector):
    """The drift gauges, computed from the served model's window when Prometheus scrapes.

    Always exported, NaN while there is nothing to score (no model, a model without a
    reference, fewer inputs than `min_inputs`): a series that never disappears.
    """

    def __init__(self, current: Callable[[], DriftMonitor | None]):
        self.current = current

    def collect(self) -> Iterator[GaugeMetricFamily]:
        monitor = self.current()
        scores = monitor.scores() if monitor else None
        threshold = monitor.reference.params.drift_threshold if monitor else math.nan
        reference_confidence = monitor.reference.confidence_mean if monitor else math.nan
        values: dict[str, tuple[str, float | None]] = {
            "api_drift_window_inputs": (
                "Inputs in the drift window",
                scores.inputs if scores else None,
            ),
            "api_input_drift_score": (
                "Mean Jensen-Shannon distance of the window's pixel and ink histograms to the "
                "training reference (0: alike, 1: nothing in common)",
                scores.input_drift if scores else None,
            ),
            "api_input_drift_threshold": ("Above it, inputs have drifted", threshold),
            "api_prediction_shift": (
                "Jensen-Shannon distance of the window's predicted digits to the val split's",
                scores.prediction_shift if scores else None,
            ),
            "api_window_confidence_mean": (
                "Mean probability of the predicted digit over the window",
                scores.mean_confidence if scores else None,
            ),
            "api_reference_confidence_mean": (
                "Mean probability of the predicted digit on the val split",
                reference_confidence,
            ),
        }
        for name, (documentation, value) in values.items():
            yield GaugeMetricFamily(name, documentation, value=math.nan if value is None else value)


class LiveScore(NamedTuple):
    """The served model's live accuracy: labels counted, the share right, the alert's bar."""

    labels: int
    accuracy: float
    threshold: float


class LiveAccuracy(Collector):
    """The share of right answers among the served model's last labelled predictions, computed
    from the feedback store when Prometheus scrapes; NaN without enough labels (or a model)."""

    def __init__(self, current: Callable[[], LiveScore]):
        self.current = current

    def collect(self) -> Iterator[GaugeMetricFamily]:
        live = self.current()
        yield GaugeMetricFamily(
            "api_live_accuracy",
            "Share of the served model's last labelled predictions it got right (labels from "
            "POST /feedback; NaN below the minimum of labels)",
            value=live.accuracy,
        )
        yield GaugeMetricFamily(
            "api_live_labels", "Labelled predictions the live accuracy counts", value=live.labels
        )
        yield GaugeMetricFamily(
            "api_live_accuracy_threshold",
            "Below it, the served model is degraded (ModelDegraded)",
            value=live.threshold,
        )


class Telemetry:
    """Pure ASGI middleware: request id, latency, status, in-flight count, one log line.

    Routes add to `scope["state"]["log"]` what belongs in the line (model version, digits).
    The line and the metrics are recorded just before the last bytes of the answer go out, so a
    client that has its answer finds its request in the log and in `/metrics`.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        request_id = headers.get(REQUEST_ID_HEADER.encode(), b"").decode()[:64] or random_hex(32)
        client = headers.get(CLIENT_HEADER.encode(), b"").decode(errors="replace")
        client = client if client in CLIENTS else "api"
        extra: dict = {}
        scope.setdefault("state", {}).update(log=extra, client=client)
        status, recorded = 500, False
        started = time.perf_counter()

        def record() -> None:
            nonlocal recorded
            if recorded:
                return
            recorded = True
            self.metrics.in_flight.dec()
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")  # the template, not the URL
            labels = (route, scope["method"], str(status))
            self.metrics.requests_by(*labels, client).inc()
            self.metrics.latency_by(*labels).observe(seconds)
            access_lines.info(
                "request",
                {
                    "request_id": request_id,
                    "method": scope["method"],
                    "route": route,
                    "status": status,
                    "latency_ms": round(seconds * 1000, 3),
                    "client": client,
                    **extra,
                },
            )

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER.encode(), request_id.encode()),
                ]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                record()
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            record()  # no answer went out (an exception): the line is still written
