"""GET /health, /ready, /model, /metrics: what operators and Prometheus ask."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.serving.deps import MetricsDep, ModelDep, StoreDep
from app.serving.schemas import ModelInfo, Problem

router = APIRouter(tags=["operations"])


@router.get("/health")
async def health() -> dict[str, str]:
    """Alive: the process answers (it may not have a model yet; see /ready)."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"model": Problem}})
async def ready(store: StoreDep) -> dict[str, str]:
    """Ready to predict: a model is loaded. 503, with what is missing, until then."""
    if store.current is None:
        raise HTTPException(503, f"not ready: {store.last_problem}")
    return {"status": "ready", "model_version": store.current.version}


@router.get("/model", responses={503: {"model": Problem}})
async def model_info(model: ModelDep) -> ModelInfo:
    """The served model: registry name and version, run, data version, val metrics, load time,
    and the runtime that computes its answers."""
    return ModelInfo(
        name=model.name,
        version=model.version,
        run_id=model.run_id,
        data_version=model.data_version,
        metrics=model.metrics,
        loaded_at=model.loaded_at,
        runtime=model.runtime,
    )


@router.get("/metrics", response_class=Response)
async def metrics(metrics: MetricsDep) -> Response:
    """Prometheus metrics, in the text exposition format."""
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
