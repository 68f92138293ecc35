"""The admin routes (`Authorization: Bearer <admin token>`): POST /admin/reload checks @champion
now instead of at the next poll; GET /admin/labels pages through the labelled predictions, the
field data `python -m app.data field --api` makes a data version of (from compose, from replicas
on PostgreSQL: wherever the store is, the API reaches it)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy.exc import SQLAlchemyError

from app.feedback import labelled_inputs
from app.serving.deps import AdminDep, FeedbackDep, SettingsDep, StoreDep
from app.serving.schemas import LabelledInputOut, LabelsPage, Problem

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[AdminDep])


@router.post("/reload", responses={401: {"model": Problem}, 503: {"model": Problem}})
async def reload(store: StoreDep) -> dict[str, str | bool | None]:
    """Load the current champion if it changed. Needs `Authorization: Bearer <admin token>`."""
    swapped = await store.refresh()
    if store.current is None:
        raise HTTPException(503, f"no model to serve: {store.last_problem}")
    return {"swapped": swapped, "version": store.current.version, "problem": store.last_problem}


@router.get("/labels", responses={401: {"model": Problem}, 503: {"model": Problem}})
async def labels(
    feedback: FeedbackDep,
    settings: SettingsDep,
    after: Annotated[str, Query(max_length=40, description="the last id of the page before")] = "",
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> LabelsPage:
    """The labelled predictions of the served model's name with their inputs, by prediction id,
    a page at a time. Needs `Authorization: Bearer <admin token>`: inputs are user data."""
    if feedback is None:
        raise HTTPException(503, "this API keeps no predictions (WORKBOOK_FEEDBACK_STORE=false)")
    try:
        found = await asyncio.to_thread(
            labelled_inputs, feedback.engine, settings.model_name, after, limit
        )
    except SQLAlchemyError as error:
        raise HTTPException(
            503, f"the feedback store is unavailable: {type(error).__name__}"
        ) from None
    page = [LabelledInputOut(**vars(row) | {"pixels": row.pixels.tolist()}) for row in found]
    return LabelsPage(labels=page, next=found[-1].prediction_id if len(found) == limit else None)
