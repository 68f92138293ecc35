"""POST /admin/reload: check @champion now instead of at the next poll."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from app.serving.deps import AdminDep, StoreDep
from app.serving.schemas import Problem

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[AdminDep])


@router.post("/reload", responses={401: {"model": Problem}, 503: {"model": Problem}})
async def reload(store: StoreDep) -> dict[str, str | bool | None]:
    """Load the current champion if it changed. Needs `Authorization: Bearer <admin token>`."""
    swapped = await store.refresh()
    if store.current is None:
        raise HTTPException(503, f"no model to serve: {store.last_problem}")
    return {"swapped": swapped, "version": store.current.version, "problem": store.last_problem}
