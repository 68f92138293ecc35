"""The playground page in headless Chromium, against a live API process serving a real champion.

Strokes are drawn through real pointer events (Playwright drives the system's Chromium); the
page's requests reach the real API. Set WORKBOOK_SCREENSHOT_DIR to keep the screenshot the
README shows (`make screenshots`).
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from app import stack
from app.stack import free_port
from tests.helpers import STROKES, champion_of, chromium, draw, isolated, predict_drawing

pytestmark = pytest.mark.integration
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def live(server, params, tmp_path_factory):
    """An API serving a champion (a baseline, version 1): its URL and settings."""
    settings = isolated(server).model_copy(
        update={"api_port": free_port(), "state_dir": tmp_path_factory.mktemp("api")}
    )
    champion_of(settings, params)
    with stack.running(settings, "api"):  # as the stack runs it: uvicorn, on its own port
        yield settings.api_url, settings


@pytest.fixture(scope="module")
def served(live) -> str:
    return live[0]


@pytest.fixture(scope="module")
def modelless(server, tmp_path_factory):
    """An API whose registry has no champion: it answers 503 to predictions."""
    settings = isolated(server).model_copy(
        update={"api_port": free_port(), "state_dir": tmp_path_factory.mktemp("api")}
    )
    with stack.running(settings, "api"):
        yield settings.api_url, settings


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    yield page
    context.close()


def test_a_drawn_digit_is_predicted_and_shown(page: Page, served, tmp_path):
    page.goto(f"{served}/")  # the API's home leads to the playground
    assert page.url == f"{served}/playground"
    model = httpx.get(f"{served}/model").json()
    expect(page.locator("#model")).to_contain_text(f"version {model['version']}")
    expect(page.locator("#model")).to_contain_text(f"data {model['data_version']}")
    page.get_by_label("Predict when I pause drawing").uncheck()
    with page.expect_request("**/predict/image") as sent:
        answer = predict_drawing(page, STROKES[7])
    assert sent.value.headers["x-client"] == "playground"
    shown = answer["predictions"][0]
    expect(page.locator("#digit")).to_have_text(str(shown["digit"]))
    bars = page.locator("#bars .bar")
    expect(bars).to_have_count(10)
    widths = [float(bar.get_attribute("aria-valuenow")) for bar in bars.all()]
    assert widths == pytest.approx(shown["probabilities"], abs=1e-3)
    cells = page.locator("#grid div")
    expect(cells).to_have_count(64)
    assert [float(text) for text in cells.all_inner_texts()] == [
        round(value) for value in answer["pixels"]
    ]
    assert sum(answer["pixels"]) > 0  # the strokes reached the model as ink
    screenshots = Path(os.environ.get("WORKBOOK_SCREENSHOT_DIR", tmp_path))
    page.screenshot(path=screenshots / "playground.png", full_page=True)
    assert (screenshots / "playground.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_pause_after_drawing_predicts_by_itself(page: Page, served):
    page.goto(f"{served}/playground")
    with page.expect_response("**/predict/image", timeout=10_000) as answer:
        draw(page, STROKES[0])  # no button pressed
    assert answer.value.status == 200
    expect(page.locator("#bars .bar")).to_have_count(10)


def test_the_buttons_are_reachable_and_work_from_the_keyboard(page: Page, served):
    page.goto(f"{served}/playground")
    page.get_by_label("Predict when I pause drawing").uncheck()
    draw(page, STROKES[1])
    focused = []
    for _ in range(8):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.textContent.trim()"))
        if focused[-1] == "Predict":
            break
    assert "Predict" in focused, f"Tab never reached Predict: {focused}"
    with page.expect_response("**/predict/image") as answer:
        page.keyboard.press("Enter")
    assert answer.value.ok
    page.keyboard.press("Tab")  # Clear comes next
    page.keyboard.press("Enter")
    expect(page.locator("#digit")).to_have_text("–")


def test_an_empty_canvas_is_not_sent(page: Page, served):
    page.goto(f"{served}/playground")
    sent = []
    page.on("request", lambda request: sent.append(request.url))
    page.get_by_role("button", name="Predict").click()
    expect(page.locator("#message")).to_have_text("Draw a digit first: the canvas is empty.")
    assert not [url for url in sent if "/predict" in url]


def test_without_a_model_the_page_says_so_then_that_the_api_is_gone(page: Page, modelless):
    url, settings = modelless
    page.goto(f"{url}/playground")
    expect(page.locator("#model")).to_have_text("No model is served yet.")
    page.get_by_label("Predict when I pause drawing").uncheck()
    draw(page, STROKES[3])
    with page.expect_response("**/predict/image") as answer:
        page.get_by_role("button", name="Predict").click()
    assert answer.value.status == 503
    expect(page.locator("#message")).to_contain_text("No model is served yet")
    expect(page.locator("#message")).to_contain_text("make train")
    stack.stop(settings, stack.service(settings, "api"))
    page.get_by_role("button", name="Predict").click()
    expect(page.locator("#message")).to_have_text("The API did not answer: is it running?")


def touch_stroke(page: Page, points: list[tuple[float, float]]) -> None:
    """A finger's stroke, as the phone's touch screen reports it (Chrome DevTools Protocol)."""
    box = page.locator("#canvas").bounding_box()
    touch = page.context.new_cdp_session(page)
    kinds = ["touchStart"] + ["touchMove"] * (len(points) - 1)
    for kind, (x, y) in zip(kinds, points, strict=True):
        at = {"x": box["x"] + x * box["width"], "y": box["y"] + y * box["height"]}
        touch.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [at]})
    touch.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def test_the_page_fits_a_phone_and_draws_with_a_finger(browser, served):
    context = browser.new_context(viewport=PHONE, has_touch=True, is_mobile=True)
    page = context.new_page()
    try:
        page.goto(f"{served}/playground")
        wider = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert wider <= 0, f"the page is {wider}px wider than a phone's screen"
        page.get_by_label("Predict when I pause drawing").uncheck()
        seen = []
        page.expose_function("seen", lambda kind: seen.append(kind))
        page.evaluate(
            "document.getElementById('canvas')"
            ".addEventListener('pointermove', (e) => seen(e.pointerType))"
        )
        touch_stroke(page, [(0.5, 0.1 + 0.08 * step) for step in range(11)])  # a "1"
        assert seen and set(seen) == {"touch"}, seen  # drawn through touch pointer events
        with page.expect_response("**/predict/image") as answer:
            page.get_by_role("button", name="Predict").click()
        assert answer.value.ok, answer.value.text()
        assert sum(answer.value.json()["pixels"]) > 0
    finally:
        context.close()


def test_playground_traffic_is_counted_apart(served, page: Page):
    page.goto(f"{served}/playground")
    page.get_by_label("Predict when I pause drawing").uncheck()
    predict_drawing(page, STROKES[4])
    text = httpx.get(f"{served}/metrics").text
    assert any(
        line.startswith("api_requests_total{")
        and 'client="playground"' in line
        and 'route="/predict/image"' in line
        and float(line.split()[-1]) >= 1
        for line in text.splitlines()
    )


def test_a_new_champion_shows_on_the_page_without_a_reload(page: Page, live, params):
    url, settings = live
    page.goto(f"{url}/playground")
    before = httpx.get(f"{url}/model").json()["version"]
    expect(page.locator("#model")).to_contain_text(f"version {before},")
    promoted = champion_of(settings, params, C=0.4)  # as accurate: the gate lets it through
    assert promoted != before
    # The API picks it up within its poll interval, the page within its own (5 s).
    expect(page.locator("#model")).to_contain_text(f"version {promoted},", timeout=30_000)
    expect(page.locator("#model")).to_contain_text("new champion swapped in")
