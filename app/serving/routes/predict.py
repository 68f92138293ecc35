"""POST /predict (pixel rows) and POST /predict/image (an uploaded picture)."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, HTTPException, Request, Response, UploadFile
from fastapi.exceptions import RequestValidationError
from PIL import Image, UnidentifiedImageError
from pydantic import TypeAdapter, ValidationError

from app.data.images import image_to_features
from app.explain import shapley_values
from app.feedback import Made, new_batch_id, utcnow
from app.serving.deps import DirectRoute, Services, ServicesDep, json_services
from app.serving.model_store import ServedModel
from app.serving.rollout import CHALLENGER_ROLE, CHAMPION_ROLE, CLIENT_ID_HEADER, ShadowJob
from app.serving.schemas import (
    ImagePredictResponse,
    PredictRequest,
    PredictResponse,
    Problem,
    json_body,
    parse_json,
)

log = logging.getLogger("app.serving")
router = APIRouter(tags=["predict"])
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem}
    for status in (400, 413, 415, 422, 503)
}  # fmt: skip
IMAGE_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG"}
MAX_EXPLAINED = 16  # digits a request may ask to explain: each costs ~500 rows of the model
# `?explain=` is read by hand, only when a query string came, and declared to the document
# below: as a FastAPI query parameter it cost every request 4 % of the throughput (measured).
EXPLAIN_PARAMETER = {
    "name": "explain",
    "in": "query",
    "required": False,
    "schema": {"type": "boolean", "default": False},
    "description": "Also say why: each prediction gets the credit of each of its 64 pixels "
    f"(`explanation`, sampled Shapley values). About 10 ms a digit, at most {MAX_EXPLAINED} "
    "digits a request; off by default.",
}
as_boolean = TypeAdapter(bool)


def answer(
    features: np.ndarray, champion: ServedModel, services: Services, client: str | None
) -> tuple[np.ndarray, ServedModel, str]:
    """The probabilities, from the model this client's requests go to (the champion, or the
    challenger on a canary share), and which model and role answered. A challenger that fails
    is answered for by the champion: the client never sees its failure, the rollback rule does."""
    store, metrics = services.store, services.metrics
    model, role = store.pick(client)
    model = model or champion
    started = time.perf_counter()
    try:
        probabilities = model.classifier.predict_proba(features)
    except Exception as error:
        if role != CHALLENGER_ROLE:
            raise
        metrics.role_requests_by(role, model.version, "fallback").inc()
        log.warning("the challenger failed; the champion answers", extra={"error": str(error)})
        store.observe(role, False, time.perf_counter() - started)
        model, role, started = champion, CHAMPION_ROLE, time.perf_counter()
        probabilities = model.classifier.predict_proba(features)
    seconds = time.perf_counter() - started
    metrics.role_requests_by(role, model.version, "answered").inc()
    metrics.model_seconds_by(role).observe(seconds)
    store.observe(role, True, seconds)
    return probabilities, model, role


def predict_rows(
    features: np.ndarray, services: Services, request: Request
) -> tuple[dict[str, Any], ServedModel]:
    """Run the model on n x 64 rows; count, log (never the pixels) and store what it predicted,
    each prediction under an id that a label from the field can name later (no store: not kept).
    A challenger in shadow scores what the champion answered, after the answer is made.
    Returns the answer's content (a `PredictResponse`), as plain lists and dicts, and the model
    that made it."""
    metrics, store = services.metrics, services.store
    probabilities, model, role = answer(
        features, services.model(), services, request.headers.get(CLIENT_ID_HEADER)
    )
    digits, confidences = probabilities.argmax(axis=1), probabilities.max(axis=1)
    for digit, confidence in zip(digits.tolist(), confidences.tolist(), strict=True):
        metrics.predictions_by(str(digit)).inc()
        metrics.confidence.observe(confidence)
    if model.drift:  # a copy into the window; the scores are computed when Prometheus scrapes
        model.drift.window.add(features, digits, confidences)
    made = Made(
        new_batch_id(),
        utcnow(),
        model.name,
        model.version,
        request.scope["state"]["client"],
        digits,
        confidences,
        features,
    )
    if services.feedback:
        services.feedback.record(made)
    if role == CHAMPION_ROLE and store.challenger is not None:
        services.shadow.submit(ShadowJob(features, digits, made.ids()))
    request.scope["state"]["log"].update(
        model_version=model.version, role=role, digits=digits.tolist(), prediction_batch=made.batch
    )
    rounded = probabilities.astype(np.float64).round(6).tolist()
    content = {
        "predictions": [
            {"id": i, "digit": digit, "probabilities": row}
            for i, digit, row in zip(made.ids(), digits.tolist(), rounded, strict=True)
        ],
        "model": {
            "name": model.name,
            "version": model.version,
            "run_id": model.run_id,
            "role": role,
        },
    }
    return content, model


def wants_explanation(request: Request, rows: int) -> bool:
    """Whether the query asks to explain (`explain=true`, or 1, yes, on: pydantic's booleans);
    a 422 for a value that is not a boolean or for more digits than a request may explain."""
    if not request.scope["query_string"]:
        return False
    value = request.query_params.get("explain")
    if value is None:
        return False
    try:
        explain = as_boolean.validate_python(value)
    except ValidationError as error:
        raise RequestValidationError(
            [{**item, "loc": ("query", "explain")} for item in error.errors()]
        ) from None
    if explain and rows > MAX_EXPLAINED:
        raise HTTPException(
            422,
            f"explain: at most {MAX_EXPLAINED} digits a request, not {rows}: ask for the rest in "
            "other requests",
        )
    return explain


async def add_explanations(
    content: dict[str, Any], model: ServedModel, features: np.ndarray
) -> None:
    """Give each prediction its pixel credits, from the model that answered it. Off the event
    loop: the model calls take milliseconds, and other requests are answered meanwhile."""
    digits = np.array([prediction["digit"] for prediction in content["predictions"]])
    maps = await asyncio.to_thread(shapley_values, model.classifier.predict_proba, features, digits)
    for prediction, explanation in zip(content["predictions"], maps, strict=True):
        prediction["explanation"] = explanation.as_json()


async def predict(request: Request) -> Response:
    """Predict the digit of each row of 64 pixel values (8x8, row by row, 0..16).

    By default at most 1,000 rows per request (`WORKBOOK_API_MAX_INSTANCES`) in a body of at most
    2 MB (`WORKBOOK_API_MAX_BODY_BYTES`): a bigger batch gets a 422 or a 413; send it in parts.
    """
    # The body is validated from its bytes and the answer encoded by orjson: FastAPI's generic
    # path, which decodes JSON into Python objects before validating them and validates an answer
    # again before encoding it, was a sixth of a request's time (py-spy); the rest of its work on
    # a request, a seventh more (`DirectRoute`). The route's declaration below (`json_body`,
    # `response_model`) still says in the document what it takes and answers.
    services = json_services(request)
    body = parse_json(PredictRequest, await request.body())
    settings = services.settings
    if len(body.instances) > settings.api_max_instances:
        raise HTTPException(
            422, f"too many instances: {len(body.instances)} > {settings.api_max_instances}"
        )
    explain = wants_explanation(request, len(body.instances))
    features = np.asarray(body.instances, dtype=np.float32)
    content, model = predict_rows(features, services, request)
    if explain:
        await add_explanations(content, model, features)
    return Response(orjson.dumps(content), media_type="application/json")


router.add_api_route(
    "/predict",
    predict,
    methods=["POST"],
    route_class_override=DirectRoute,  # called as it is: it reads and answers for itself
    responses=ERRORS,
    response_model=PredictResponse,
    openapi_extra=json_body(PredictRequest) | {"parameters": [EXPLAIN_PARAMETER]},
)


# What the upload's part must declare, said in the OpenAPI document, so that a generated client
# sends it (multipart's `encoding`); FastAPI's UploadFile alone documents only "binary".
IMAGE_BODY = {
    "content": {
        "multipart/form-data": {"encoding": {"file": {"contentType": ", ".join(IMAGE_TYPES)}}}
    }
}


@router.post(
    "/predict/image",
    responses=ERRORS,
    openapi_extra={"requestBody": IMAGE_BODY, "parameters": [EXPLAIN_PARAMETER]},
    response_model_exclude_none=True,  # no `explanation: null` when none was asked for
)
async def predict_image(
    file: UploadFile, services: ServicesDep, request: Request
) -> ImagePredictResponse:
    """Predict the digit in an uploaded PNG or JPEG photo or drawing of one digit, any size."""
    settings = services.settings
    explain = wants_explanation(request, 1)
    if file.content_type not in IMAGE_TYPES:
        raise HTTPException(415, f"upload a PNG or JPEG image, not {file.content_type!r}")
    data = await file.read(settings.api_max_image_bytes + 1)
    if len(data) > settings.api_max_image_bytes:
        raise HTTPException(
            413, f"image too large: the limit is {settings.api_max_image_bytes} bytes"
        )
    try:
        with Image.open(io.BytesIO(data), formats=list(IMAGE_TYPES.values())) as image:
            width, height = image.size
            if width * height > settings.api_max_image_pixels:
                raise HTTPException(
                    413,
                    f"image too large: {width}x{height} pixels, the limit is "
                    f"{settings.api_max_image_pixels} pixels",
                )
            image.load()
            features = image_to_features(image)
    except UnidentifiedImageError:  # its message names an in-memory object, not the problem
        raise HTTPException(
            422, "not a readable PNG or JPEG image: not one of those formats"
        ) from None
    except (OSError, SyntaxError, Image.DecompressionBombError) as error:
        raise HTTPException(422, f"not a readable PNG or JPEG image: {error}") from None
    except ValueError as error:  # no ink: nothing to classify
        raise HTTPException(422, str(error)) from None
    rows = features.reshape(1, -1).astype(np.float32)
    content, model = predict_rows(rows, services, request)
    if explain:
        await add_explanations(content, model, rows)
    return ImagePredictResponse(**content, pixels=features.tolist())
