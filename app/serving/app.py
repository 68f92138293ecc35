"""The model API: `uvicorn app.serving.app:create_app --factory` (the stack runs exactly that)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator
from typing import Any

import mlflow
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from mlflow.environment_variables import (
    MLFLOW_HTTP_REQUEST_MAX_RETRIES,
    MLFLOW_HTTP_REQUEST_TIMEOUT,
)
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from app import allocator
from app.config import LIVE_MIN_LABELS, LIVE_THRESHOLD, LIVE_WINDOW, Settings, get_settings
from app.feedback import FeedbackStore, database_url
from app.log import setup_json_logging
from app.serving.deps import Services
from app.serving.limits import BodySizeLimit
from app.serving.model_store import ModelStore
from app.serving.rollout import Shadow
from app.serving.routes import admin, feedback, meta, playground, predict
from app.serving.schemas import FeedbackRequest, PredictRequest
from app.serving.telemetry import LiveScore, Metrics, Telemetry

log = logging.getLogger("app.serving")


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the champion (if there is one), then keep polling for a new one until shutdown."""
    settings: Settings = app.state.settings
    mlflow.set_tracking_uri(settings.mlflow_uri)
    # A registry that stopped answering must fail a check in seconds: serving goes on meanwhile.
    for variable, value in ((MLFLOW_HTTP_REQUEST_MAX_RETRIES, 0), (MLFLOW_HTTP_REQUEST_TIMEOUT, 5)):
        if not variable.is_set():
            variable.set(value)
    feedback = app.state.feedback = (
        FeedbackStore(
            database_url(settings),
            settings.feedback_keep_hours,
            settings.feedback_max_unlabelled,
        )
        if settings.feedback_store
        else None
    )
    store: ModelStore = app.state.store
    shadow = app.state.shadow = Shadow(
        lambda: store.challenger, app.state.metrics, settings.rollout_shadow_queue
    )
    app.state.services = Services(settings, store, app.state.metrics, feedback, shadow)
    await store.refresh()
    log.info("memory", extra=allocator.in_use())  # the model loaded, if there is one
    if store.current is None:
        log.warning("starting without a model", extra={"problem": store.last_problem})
    poller = asyncio.create_task(store.poll())
    yield
    poller.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await poller
    await asyncio.to_thread(app.state.shadow.close)
    if feedback:
        await asyncio.to_thread(feedback.close)  # what is queued is written: a restart loses none


async def problem(request: Request, error: Exception) -> JSONResponse:
    """Every error as {"error": ..., "detail": ...}: a message that names the problem."""
    if isinstance(error, RequestValidationError):
        detail = [
            {"field": ".".join(str(part) for part in item["loc"]), "problem": item["msg"]}
            for item in error.errors()
        ]
        first = detail[0]
        message = f"invalid request: {first['field']}: {first['problem']}"
        if len(detail) > 1:
            message += f" (and {len(detail) - 1} more)"
        return JSONResponse({"error": message, "detail": detail[:20]}, status_code=422)
    if isinstance(error, ClientDisconnect):  # no one reads this answer; the log line and the
        # metrics do: a bad request, not a failure of the API
        return JSONResponse(
            {"error": "the client closed the connection before its request body arrived whole"},
            status_code=400,
        )
    assert isinstance(error, HTTPException)
    return JSONResponse(
        {"error": error.detail}, status_code=error.status_code, headers=error.headers
    )


def live_accuracy(app: FastAPI) -> LiveScore:
    """The served model's live accuracy from the feedback store, with its monitoring knobs."""
    model, store = app.state.store.current, getattr(app.state, "feedback", None)
    knobs = model.drift.reference.params if model and model.drift else None
    threshold = knobs.live_accuracy_threshold if knobs else LIVE_THRESHOLD
    if model is None or store is None:
        return LiveScore(0, math.nan, threshold)
    window = knobs.live_window if knobs else LIVE_WINDOW
    minimum = knobs.live_min_labels if knobs else LIVE_MIN_LABELS
    labels, accuracy = store.live_accuracy(model.name, model.version, window, minimum)
    return LiveScore(labels, accuracy, threshold)


def document_schemas(app: FastAPI, *models: type[BaseModel]) -> None:
    """Add to the OpenAPI document's components the schemas of bodies that routes validate
    themselves (`parse_json`), which FastAPI cannot see; the routes refer to them by name."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()  # made on the first call, then FastAPI's cached copy
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for model in models:
            if model.__name__ not in schemas:
                schemas[model.__name__] = model.model_json_schema(
                    ref_template="#/components/schemas/{model}"
                )
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API; nothing is loaded until the app starts (see `lifespan`)."""
    settings = settings or get_settings()
    setup_json_logging()
    # FastAPIOffline serves /docs' Swagger UI from the package, not a CDN: docs work offline.
    app = FastAPIOffline(
        title="Digits model API",
        description="Serves `models:/digits-classifier@champion` from the MLflow registry.",
        version="1.0",
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry, which this API does not use (its metrics are
        # Prometheus'): off, rather than asking on every request whether it is configured.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    metrics = Metrics()
    app.state.settings, app.state.metrics, app.state.shadow = settings, metrics, None
    store = app.state.store = ModelStore(settings, metrics)
    metrics.watch_drift(lambda: store.current.drift if store.current else None)
    metrics.watch_live_accuracy(lambda: live_accuracy(app))
    for router in (predict.router, feedback.router, meta.router, admin.router, playground.router):
        app.include_router(router)
    document_schemas(app, PredictRequest, FeedbackRequest)
    app.add_exception_handler(RequestValidationError, problem)
    app.add_exception_handler(HTTPException, problem)
    app.add_exception_handler(ClientDisconnect, problem)  # routes that read their own body
    app.add_middleware(BodySizeLimit, max_bytes=settings.api_max_body_bytes)
    app.add_middleware(Telemetry, metrics=metrics)  # outermost: it sees every answer, 413s too
    return app
