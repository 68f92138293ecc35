"""What the tests share: files compared byte for byte, an isolated registry and a champion,
the compose files read as compose reads them, the playground drawn in a real browser.

Not a test module: tests import from here, never from one another (nor from bench/). The
strokes the browser draws are the course's own (app/drawing.py).
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import yaml

from app import registry
from app.config import REPO_ROOT, Params, Settings
from app.drawing import Point, Stroke
from app.training import setup_mlflow, train_and_log

# -- files and registries ----------------------------------------------------------------


def file_bytes(folder: Path) -> dict[str, bytes]:
    """Every file below a folder, by relative path: for byte-for-byte comparisons."""
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def isolated(server: Settings) -> Settings:
    """The server's settings with a registered-model name of their own, MLflow pointed at it."""
    settings = server.model_copy(update={"model_name": f"digits-{uuid.uuid4().hex[:8]}"})
    setup_mlflow(settings)
    return settings


def champion_of(settings: Settings, params: Params, **overrides) -> str:
    """Train a baseline, register it and gate it: the new champion's version."""
    logged = train_and_log(settings, params, "baseline", overrides=overrides or None)
    version = registry.register_challenger(settings, logged.model_uri).version
    assert registry.gate(settings, params, version).promoted
    return version


def huge_pages_possible() -> bool:
    """Linux hands out transparent huge pages on request (`madvise`) or always: what the API's
    allocator asks for (app/allocator.py)."""
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    return thp.exists() and "[never]" not in thp.read_text()


# -- compose files, as compose reads them ------------------------------------------------

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
# The test stack's own ports: a learner's stack (natively or in compose) keeps its own.
PORTS = {
    "WORKBOOK_MLFLOW_PORT": "5200",
    "WORKBOOK_API_PORT": "8200",
    "WORKBOOK_RETRAINER_PORT": "9297",
    "WORKBOOK_ALERT_LOG_PORT": "9295",
    "WORKBOOK_PROMETHEUS_PORT": "9290",
    "WORKBOOK_ALERTMANAGER_PORT": "9293",
    "WORKBOOK_GRAFANA_PORT": "3200",
}


def url(service: str) -> str:
    """Where the host reaches a service of the test stack."""
    variable = "WORKBOOK_" + service.upper().replace("-", "_") + "_PORT"
    return f"http://127.0.0.1:{PORTS[variable]}"


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def services(path: Path = COMPOSE_FILE) -> dict[str, dict]:
    return load(path)["services"]


def tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(str(REPO_ROOT / ".venv" / "bin" / name))
    assert path, f"{name} is missing: `make setup` installs it (a dev dependency)"
    return path


def fake_python(tmp_path, version: tuple[int, int, int], venv: bool = True):
    """An interpreter that reports another version (and, optionally, lacks venv)."""
    shim = "import sys; sys.version_info = {v!r}; sys.modules.update({m}); exec(sys.argv[1])"
    modules = "" if venv else "{'venv': None}"
    script = tmp_path / "python"
    script.write_text(
        "#!/usr/bin/env bash\n"
        f'[ "$1" = --version ] && echo "Python {".".join(map(str, version))}" && exit 0\n'
        f'exec {sys.executable} -c "{shim.format(v=version, m=modules)}" "$2"\n'
    )
    script.chmod(0o755)
    return script


# -- the playground in a real browser ----------------------------------------------------


def draw(page, strokes: list[Stroke], margin: float = 0.05) -> None:
    """Draw strokes on the page's canvas with the mouse: pointerdown, moves, pointerup."""
    box = page.locator("#canvas").bounding_box()
    size = min(box["width"], box["height"]) * (1 - 2 * margin)

    def screen(point: Point) -> Point:
        return (box["x"] + box["width"] * margin + point[0] * size,
                box["y"] + box["height"] * margin + point[1] * size)  # fmt: skip

    for stroke in strokes:
        page.mouse.move(*screen(stroke[0]))
        page.mouse.down()
        for point in stroke[1:]:
            page.mouse.move(*screen(point), steps=3)
        page.mouse.up()


def browser_path() -> str | None:
    """Chromium, as Debian, Ubuntu or Google name it (`make system-deps` installs it)."""
    return next(
        filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None
    )


def predict_drawing(page, strokes: list[Stroke]) -> dict:
    """Clear, draw, press Predict: the API's answer (the JSON the page received)."""
    page.get_by_role("button", name="Clear").click()
    draw(page, strokes)
    with page.expect_response("**/predict/image") as answer:
        page.get_by_role("button", name="Predict").click()
    return answer.value.json()


@contextlib.contextmanager
def chromium() -> Iterator:
    """Headless Chromium through Playwright, for a block (a fixture yields its pages)."""
    from playwright.sync_api import sync_playwright  # only the browser tests need it

    path = browser_path()
    assert path, "this test needs Chromium: `make system-deps` (Debian/Ubuntu) or see README"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()
