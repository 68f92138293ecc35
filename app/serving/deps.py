"""FastAPI dependencies, as `Annotated` aliases the routes declare.

They are `async def` on purpose: FastAPI runs a plain `def` dependency in a thread pool,
a hand-off that would cost more than everything these functions do. FastAPI resolves each
dependency on every request (seven of them were a sixth of a request's time, py-spy): the busy
routes take one (`ServicesDep`, `JsonServicesDep`), and `/predict`, the busiest, none (a
`DirectRoute`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.config import Settings
from app.feedback import FeedbackStore
from app.serving.model_store import ModelStore, ServedModel
from app.serving.rollout import Shadow
from app.serving.telemetry import Metrics


@dataclass(frozen=True)
class Services:
    """What a request works with, made once when the app starts."""

    settings: Settings
    store: ModelStore
    metrics: Metrics
    feedback: FeedbackStore | None  # None: the API keeps no predictions (feedback_store)
    shadow: Shadow

    def model(self) -> ServedModel:
        """The model for this request, read once: a swap mid-request does not change it."""
        return served_model(self.store)


def served_model(store: ModelStore) -> ServedModel:
    """The store's current model, or a 503 saying why there is none."""
    model = store.current
    if model is None:
        raise HTTPException(503, f"no model to serve: {store.last_problem}")
    return model


async def get_services(request: Request) -> Services:
    """The app's services."""
    return request.app.state.services


def json_services(request: Request) -> Services:
    """The app's services, for a request whose body must be JSON (else a 415, before the body
    is validated)."""
    require_json(request)
    return request.app.state.services


async def get_services_for_json(request: Request) -> Services:
    """`json_services`, as a dependency."""
    return json_services(request)


class DirectRoute(APIRoute):
    """A route whose endpoint, an `async def`, takes the `Request` alone and returns its
    `Response`, called as it is: none of FastAPI's work on each request (reading the body,
    solving dependencies, validating and encoding the answer), which was a seventh of a
    `/predict` (py-spy). FastAPI still documents it from its declaration (`response_model`,
    `responses`, `openapi_extra`), and what it raises gets the app's error handlers. For the hot
    routes, which parse their own bodies (`parse_json`) and encode their own answers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return self.endpoint


async def get_settings(request: Request) -> Settings:
    """The app's settings."""
    return request.app.state.settings


async def get_store(request: Request) -> ModelStore:
    """The model store."""
    return request.app.state.store


async def get_metrics(request: Request) -> Metrics:
    """The app's Prometheus metrics."""
    return request.app.state.metrics


async def get_feedback(request: Request) -> FeedbackStore | None:
    """The store of predictions and labels; None when the API keeps none (feedback_store)."""
    return request.app.state.feedback


async def get_model(store: Annotated[ModelStore, Depends(get_store)]) -> ServedModel:
    """The model for this request, read once: a swap mid-request does not change it."""
    return served_model(store)


# A security scheme, so /docs offers an "Authorize" button for the admin routes.
bearer = HTTPBearer(auto_error=False, description="The API's admin token")


async def require_admin(
    settings: Annotated[Settings, Depends(get_settings)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """`Authorization: Bearer <admin token>`, compared in constant time."""
    expected = settings.admin_token.get_secret_value() if settings.admin_token else None
    given = credentials.credentials if credentials else ""
    if not expected or not secrets.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(
            401,
            "a valid admin token is required: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


def require_json(request: Request) -> None:
    """Refuse a body that is not JSON with a 415 naming the content type."""
    content_type = request.headers.get("content-type")
    if (content_type or "").split(";")[0].strip().lower() != "application/json":
        raise HTTPException(
            415, f"send JSON (Content-Type: application/json), not {content_type!r}"
        )


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[ModelStore, Depends(get_store)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
FeedbackDep = Annotated[FeedbackStore | None, Depends(get_feedback)]
ModelDep = Annotated[ServedModel, Depends(get_model)]
AdminDep = Depends(require_admin)
ServicesDep = Annotated[Services, Depends(get_services)]
JsonServicesDep = Annotated[Services, Depends(get_services_for_json)]
