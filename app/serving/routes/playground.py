"""GET /playground: a page to draw a digit on and see what the served model makes of it.

The page is one file, app/serving/playground.html (HTML, CSS and JavaScript, nothing fetched
from elsewhere); it calls POST /predict/image, GET /model and, when the learner answers its
"Right?", POST /feedback, all with `X-Client: playground`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse

from app.serving.deps import SettingsDep

router = APIRouter(tags=["playground"])
PAGE = Path(__file__).resolve().parents[1] / "playground.html"
# The page runs its own inline script and style, and may reach this API only.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'",
    "X-Content-Type-Options": "nosniff",
}


@cache
def page_source() -> str:
    """The playground page, with this stack's links filled in."""
    return PAGE.read_text(encoding="utf-8")


@router.get("/", include_in_schema=False)
async def home() -> RedirectResponse:
    return RedirectResponse("/playground")


@router.get("/playground", response_class=HTMLResponse)
async def playground(settings: SettingsDep) -> HTMLResponse:
    """Draw a digit in the browser (mouse, finger or pen); the served model answers."""
    # MLflow's and Grafana's links: same host as the page, their published ports.
    html = page_source().replace("{{MLFLOW_PORT}}", str(settings.mlflow_port))
    html = html.replace("{{GRAFANA_PORT}}", str(settings.grafana_port))
    return HTMLResponse(html, headers=SECURITY_HEADERS)
