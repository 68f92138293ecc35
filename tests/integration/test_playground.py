"""The playground page in headless Chromium, against a live API process serving a real champion.

Strokes are drawn through real pointer events (Playwright drives the system's Chromium); the
page's requests reach the real API. Set WORKBOOK_SCREENSHOT_DIR to keep the screenshot the
README shows (`make screenshots`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect
from prometheus_client.parser import text_string_to_metric_families

from app import stack
from app.drawing import STROKES
from app.stack import free_port
from tests.helpers import champion_of, chromium, draw, isolated, predict_drawing

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
def storeless(live, tmp_path_factory):
    """The same champion served by an API that keeps no predictions: /feedback answers 503."""
    settings = live[1].model_copy(
        update={
            "api_port": free_port(),
            "state_dir": tmp_path_factory.mktemp("api"),
            "feedback_store": False,
        }
    )
    with stack.running(settings, "api"):
        yield settings.api_url


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


def test_show_why_outlines_the_pixels_that_decided_it(page: Page, served):
    page.goto(f"{served}/playground")
    page.get_by_label("Predict when I pause drawing").uncheck()
    page.get_by_label("Show why").check()
    page.get_by_role("button", name="Clear").click()
    draw(page, STROKES[7])
    with page.expect_response("**/predict/image?explain=true") as sent:
        page.get_by_role("button", name="Predict").click()
    explanation = sent.value.json()["predictions"][0]["explanation"]
    credits = explanation["pixels"]
    cells = page.locator("#grid div")
    expect(cells).to_have_count(64)
    outlines = [cell.evaluate("cell => cell.style.boxShadow") for cell in cells.all()]
    strongest = max(range(64), key=lambda i: abs(credits[i]))
    colour = "rgb(214, 39, 40)" if credits[strongest] > 0 else "rgb(31, 119, 180)"
    assert outlines[strongest].startswith(colour), outlines[strongest]  # full strength
    assert all(o.endswith("0px 0px 0px 4px inset") for o in outlines)
    why = page.locator("#why")
    expect(why).to_contain_text(f"pushed toward {explanation['target']}")
    expect(why).to_contain_text(f"by {sum(credits):.2f} over a blank page")
    with page.expect_response("**/predict/image") as plain:  # unticked: asked again, no map
        page.get_by_label("Show why").uncheck()
    assert "explanation" not in plain.value.json()["predictions"][0]
    expect(why).to_have_text("")
    assert all(not cell.evaluate("cell => cell.style.boxShadow") for cell in cells.all())


def test_the_page_names_its_browser_the_same_from_visit_to_visit(page: Page, served):
    """X-Client-Id: what keeps a client on one model of a canary (app/serving/rollout.py)."""
    ids = []
    for _ in range(2):
        page.goto(f"{served}/playground")
        page.get_by_label("Predict when I pause drawing").uncheck()
        with page.expect_request("**/predict/image") as sent:
            predict_drawing(page, STROKES[2])
        ids.append(sent.value.headers["x-client-id"])
    assert re.fullmatch(r"[0-9a-f]{32}", ids[0]) and ids[0] == ids[1]


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
        keypad = page.get_by_role("group", name="No, it was")
        expect(keypad).to_be_visible()  # the Right? question fits too
        wider = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert wider <= 0, f"with the question, the page is {wider}px wider than a phone"
        for button in keypad.get_by_role("button").all():
            box = button.bounding_box()
            assert box and min(box["width"], box["height"]) >= 44, box  # WCAG's target size
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


# -- "Right?": the learner labels a prediction through POST /feedback ------------------------


def labels_counted(url: str) -> dict[tuple[str, str, str], float]:
    """api_feedback_labels_total on the API's /metrics, by (client, model version, outcome)."""
    (family,) = [
        family
        for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text)
        if family.name == "api_feedback_labels"
    ]
    return {
        (s.labels["client"], s.labels["model_version"], s.labels["outcome"]): s.value
        for s in family.samples
        if s.name == "api_feedback_labels_total"
    }


def moved(before: dict, after: dict) -> dict:
    """The series that changed between two readings, by how much."""
    assert before.keys() <= after.keys()  # a counter's series never go away
    changes = {key: after[key] - before.get(key, 0) for key in after}
    return {key: change for key, change in changes.items() if change}


def question(page: Page) -> Locator:
    """The page's "Right?" group: Yes, and the ten "No, it was N" buttons."""
    return page.get_by_role("group", name="Right?")


def test_the_api_keeps_predictions_for_labels(live):
    url, settings = live
    assert settings.feedback_store and settings.feedback_database_url is None
    assert (settings.state_dir / "feedback.db").is_file()  # the default: SQLite in its state_dir
    unknown = httpx.post(f"{url}/feedback", json={"prediction_id": "0" * 32 + "-0", "digit": 1})
    assert unknown.status_code == 404, unknown.text  # on: it looked the id up (off would be 503)


def test_yes_labels_the_prediction_with_its_digit_and_the_api_counts_it(page: Page, served):
    page.goto(f"{served}/playground")
    page.get_by_label("Predict when I pause drawing").uncheck()
    expect(question(page)).to_be_hidden()  # nothing to ask about yet
    answer = predict_drawing(page, STROKES[7])
    shown, version = answer["predictions"][0], answer["model"]["version"]
    expect(question(page)).to_be_visible()
    # "No, it was 7" when the model said 7 would mean Yes: that button is there, disabled.
    expect(page.get_by_role("button", name=f"No, it was {shown['digit']}")).to_be_disabled()
    before = labels_counted(served)
    with page.expect_response("**/feedback") as answered:
        question(page).get_by_role("button", name="Yes").click()
    sent = answered.value.request
    assert sent.method == "POST"
    assert sent.headers["x-client"] == "playground"
    assert sent.post_data_json == {"prediction_id": shown["id"], "digit": shown["digit"]}
    assert answered.value.status == 201, answered.value.text()
    assert answered.value.json()["correct"] is True
    expect(page.locator("#verdict-note")).to_have_text(
        f"Thanks: labelled {shown['digit']}, the model was right."
    )
    assert moved(before, labels_counted(served)) == {("playground", version, "correct"): 1}


def test_a_wrong_digit_is_counted_and_a_second_answer_gets_the_apis_refusal(page: Page, served):
    page.goto(f"{served}/playground")
    page.get_by_label("Predict when I pause drawing").uncheck()
    answer = predict_drawing(page, STROKES[3])
    shown, version = answer["predictions"][0], answer["model"]["version"]
    predicted = shown["digit"]
    first, second = (predicted + 1) % 10, (predicted + 2) % 10
    note = page.locator("#verdict-note")
    before = labels_counted(served)
    with page.expect_response("**/feedback") as answered:
        question(page).get_by_role("button", name=f"No, it was {first}").click()
    assert answered.value.request.post_data_json == {"prediction_id": shown["id"], "digit": first}
    assert answered.value.status == 201, answered.value.text()
    expect(note).to_have_text(f"Thanks: labelled {first} (the model said {predicted}).")
    expect(page.get_by_role("button", name=f"No, it was {first}")).to_have_class("stored")
    assert moved(before, labels_counted(served)) == {("playground", version, "wrong"): 1}

    # Another digit: the page sends it, the API refuses (a label is final), the page says why.
    with page.expect_response("**/feedback") as refused:
        question(page).get_by_role("button", name=f"No, it was {second}").click()
    assert refused.value.status == 409, refused.value.text()
    error = refused.value.json()["error"]
    assert f"already labelled {first}" in error
    expect(note).to_have_text(f"Not changed: {error}")
    assert note.evaluate("e => e.scrollWidth <= e.clientWidth"), "the message overflows its box"
    # The same digit again: no change (200), and the page says so.
    with page.expect_response("**/feedback") as again:
        question(page).get_by_role("button", name=f"No, it was {first}").click()
    assert again.value.status == 200, again.value.text()
    expect(note).to_have_text(f"Already labelled {first}: no change.")
    # The API still holds the first label, and counted it once.
    check = httpx.post(f"{served}/feedback", json={"prediction_id": shown["id"], "digit": first})
    assert check.status_code == 200 and check.json()["created"] is False, check.text
    assert moved(before, labels_counted(served)) == {("playground", version, "wrong"): 1}

    # Clear forgets the question; the next prediction asks afresh.
    page.get_by_role("button", name="Clear").click()
    expect(question(page)).to_be_hidden()
    draw(page, STROKES[3])
    with page.expect_response("**/predict/image") as predicted_again:
        page.get_by_role("button", name="Predict").click()
    assert predicted_again.value.json()["predictions"][0]["id"] != shown["id"]
    expect(question(page)).to_be_visible()
    expect(note).to_have_text("")
    expect(question(page).locator(".stored")).to_have_count(0)


def test_the_answer_buttons_are_reachable_from_the_keyboard(page: Page, served):
    page.goto(f"{served}/playground")
    page.get_by_label("Predict when I pause drawing").uncheck()
    draw(page, STROKES[1])
    name = "document.activeElement.getAttribute('aria-label') || document.activeElement.innerText"
    focused: list[str] = []
    while "Predict" not in focused and len(focused) < 8:
        page.keyboard.press("Tab")
        focused.append(page.evaluate(name).strip())
    with page.expect_response("**/predict/image") as answer:
        page.keyboard.press("Enter")
    predicted = answer.value.json()["predictions"][0]["digit"]
    last = 9 if predicted != 9 else 8
    focused = []
    while f"No, it was {last}" not in focused and len(focused) < 16:
        page.keyboard.press("Tab")
        focused.append(page.evaluate(name).strip())
    # Past Clear and the tick box: Yes, then every other digit in order (the predicted one is
    # disabled, so Tab skips it).
    answers = [f"Yes, it was {predicted}"] + [
        f"No, it was {d}" for d in range(last + 1) if d != predicted
    ]
    assert focused[-len(answers) :] == answers, focused
    with page.expect_response("**/feedback") as labelled:
        page.keyboard.press("Enter")
    assert labelled.value.status == 201, labelled.value.text()
    expect(page.locator("#verdict-note")).to_have_text(
        f"Thanks: labelled {last} (the model said {predicted})."
    )


def test_without_a_feedback_store_the_page_says_feedback_is_off(page: Page, storeless):
    page.goto(f"{storeless}/playground")
    page.get_by_label("Predict when I pause drawing").uncheck()
    predict_drawing(page, STROKES[0])
    with page.expect_response("**/feedback") as answered:
        question(page).get_by_role("button", name="Yes").click()
    assert answered.value.status == 503
    error = answered.value.json()["error"]
    expect(page.locator("#verdict-note")).to_have_text(f"Feedback is off on this API: {error}")
