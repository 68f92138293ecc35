"""POST /feedback: the digit a prediction really was, from the field (a user, a reviewer)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from sqlalchemy.exc import SQLAlchemyError

from app.feedback import AlreadyLabelled, UnknownPrediction
from app.serving.deps import JsonServicesDep
from app.serving.schemas import FeedbackRequest, FeedbackResponse, Problem, json_body, parse_json

router = APIRouter(tags=["feedback"])
ERRORS: dict[int | str, dict[str, Any]] = {
    200: {"model": FeedbackResponse, "description": "This label was stored already: no change"},
    **{status: {"model": Problem} for status in (404, 409, 413, 415, 422, 503)},
}


@router.post(
    "/feedback", status_code=201, responses=ERRORS, openapi_extra=json_body(FeedbackRequest)
)
async def feedback(
    services: JsonServicesDep, request: Request, response: Response
) -> FeedbackResponse:
    """Label a prediction with the digit it really was: its `id` from `/predict`'s answer.

    A label is final: the same label again changes nothing (200), another digit is refused
    (409). An id the API does not hold (never made, or unlabelled for longer than it keeps
    predictions) is a 404.
    """
    body = parse_json(FeedbackRequest, await request.body())
    client = request.scope["state"]["client"]
    store, settings = services.feedback, services.settings
    if store is None:
        raise HTTPException(503, "this API keeps no predictions (WORKBOOK_FEEDBACK_STORE=false)")
    try:
        labelled = await asyncio.to_thread(store.label, body.prediction_id, body.digit, client)
    except UnknownPrediction:
        raise HTTPException(
            404,
            f"no prediction {body.prediction_id} here: never made, or unlabelled for longer "
            f"than the {settings.feedback_keep_hours:g} hours the API keeps predictions",
        ) from None
    except AlreadyLabelled as error:
        raise HTTPException(409, str(error)) from None
    except SQLAlchemyError as error:
        raise HTTPException(
            503, f"the feedback store is unavailable: {type(error).__name__}"
        ) from None
    if labelled.created:
        outcome = "correct" if labelled.correct else "wrong"
        services.metrics.feedback.labels(labelled.model_version, client, outcome).inc()
        services.store.observe_label(labelled.model_version, labelled.correct)  # canary's rule
        # ... and the challenger's answer in shadow, if it gave one
        services.shadow.label(labelled.prediction_id, labelled.digit)
    else:
        response.status_code = 200
    request.scope["state"]["log"].update(
        prediction_id=labelled.prediction_id, label=labelled.digit, correct=labelled.correct
    )
    return FeedbackResponse(
        prediction_id=labelled.prediction_id,
        digit=labelled.digit,
        predicted=labelled.predicted,
        correct=labelled.correct,
        model_version=labelled.model_version,
        created=labelled.created,
    )
