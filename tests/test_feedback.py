"""Labels from the field: the store of predictions and labels, and POST /feedback on the API.

The API serves a real champion from MLflow's SQLite store, in-process; the feedback store is a
real SQLite database in a temporary folder, opened again to prove a restart loses nothing.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select

from app.data import load_split
from app.feedback import (
    AlreadyLabelled,
    FeedbackStore,
    Made,
    UnknownPrediction,
    connect,
    labels,
    pixels_of,
    predictions,
)
from app.feedback import utcnow as now
from app.serving.app import create_app
from tests.helpers import champion_of, isolated


def made(batch: str, digits: list[int], version: str = "1", made_at=None) -> Made:
    """A request's predictions, as the API queues them: ids `<batch * 32>-<row>`."""
    n = len(digits)
    pixels = np.arange(n * 64, dtype=np.float32).reshape(n, 64) % 17
    return Made(
        batch * 32, made_at or now(), "digits", version, "api",
        np.array(digits), np.full(n, 0.9), pixels,
    )  # fmt: skip


def ids(n: int, batch: str = "a") -> list[str]:
    return [f"{batch * 32}-{i}" for i in range(n)]


@pytest.fixture
def store(tmp_path):
    opened = FeedbackStore(f"sqlite:///{tmp_path / 'feedback.db'}", 24, 1000)
    yield opened
    opened.close()


def test_a_label_joins_its_prediction_once(store):
    store.record(made("a", [3]))  # queued: label() writes it first
    first = store.label(ids(1)[0], 3, "playground")
    assert (first.created, first.correct, first.predicted, first.model_version) == (
        True,
        True,
        3,
        "1",
    )
    again = store.label(ids(1)[0], 3, "api")
    assert not again.created and again.correct
    with pytest.raises(AlreadyLabelled, match="already labelled 3: a label is final"):
        store.label(ids(1)[0], 5, "api")
    with pytest.raises(UnknownPrediction):
        store.label("f" * 32 + "-0", 3, "api")
    with store.engine.connect() as connection:
        assert connection.execute(select(labels.c.digit, labels.c.client)).all() == [
            (3, "playground")
        ]
        (pixels,) = connection.execute(select(predictions.c.pixels)).scalars()
    assert np.array_equal(pixels_of(pixels), made("a", [3]).features[0])


def test_live_accuracy_counts_the_last_labels_of_one_version(store):
    store.record(made("a", [1] * 30))
    store.record(made("b", [1] * 5, version="2"))
    for n, prediction_id in enumerate(ids(30)):
        store.label(prediction_id, 1 if n < 10 else 7, "api")  # 10 right, then 20 wrong
    for prediction_id in ids(5, "b"):
        store.label(prediction_id, 1, "api")
    assert store.live_accuracy("digits", "1", last=30, minimum=20) == (30, pytest.approx(1 / 3))
    count, accuracy = store.live_accuracy("digits", "1", last=10, minimum=5)
    assert count == 10 and accuracy == 0.0  # the last ten labels were all wrong
    count, accuracy = store.live_accuracy("digits", "2", last=30, minimum=20)
    assert count == 5 and math.isnan(accuracy)  # too few labels to say
    assert store.live_accuracy("digits", "3", last=30, minimum=1)[0] == 0


def test_pruning_keeps_labels_and_bounds_the_unlabelled(tmp_path):
    store = FeedbackStore(f"sqlite:///{tmp_path / 'f.db'}", keep_hours=1, max_unlabelled=3)
    old = now() - timedelta(hours=2)
    store.record(made("c", [2] * 4, made_at=old))
    store.record(made("d", [2] * 5))
    store.flush()
    store.label(ids(4, "c")[0], 2, "api")  # old, but labelled: field data, kept
    assert store.prune() == 3 + 2  # the other old ones, then the oldest beyond three
    with store.engine.connect() as connection:
        kept = set(connection.execute(select(predictions.c.id)).scalars())
    assert kept == {ids(4, "c")[0], *ids(5, "d")[2:]}
    store.close()


@pytest.fixture(scope="module")
def served(local_registry, params, tmp_path_factory):
    """A champion in the SQLite registry, and a feedback database of this module's own."""
    database = tmp_path_factory.mktemp("feedback") / "feedback.db"
    settings = isolated(local_registry).model_copy(
        update={
            "admin_token": SecretStr("token"),
            "feedback_database_url": f"sqlite:///{database}",
        }
    )
    champion_of(settings, params)
    return settings


@pytest.fixture(scope="module")
def val(served):
    return load_split(served.data_dir / "val")


def predict(client: TestClient, rows) -> list[dict]:
    answer = client.post("/predict", json={"instances": rows.tolist()})
    assert answer.status_code == 200, answer.text
    return answer.json()["predictions"]


def metric(client: TestClient, name: str) -> dict[str, float]:
    """Every series of a metric, by its labels."""
    found = re.findall(rf"^{name}(\{{.*?\}})? (\S+)$", client.get("/metrics").text, re.M)
    return {labels_: float(value) for labels_, value in found}


def stored(served) -> tuple[int, int, list]:
    """What the feedback database holds: predictions and labels counted, and every label."""
    engine = connect(served.feedback_database_url)
    with engine.connect() as connection:
        counts = (
            connection.execute(select(func.count()).select_from(predictions)).scalar_one(),
            connection.execute(select(func.count()).select_from(labels)).scalar_one(),
            connection.execute(select(labels).order_by(labels.c.prediction_id)).all(),
        )
    engine.dispose()
    return counts


@pytest.fixture(scope="module")
def client(served):
    with TestClient(create_app(served)) as client:  # `with`: the lifespan loads the model
        yield client


def test_each_prediction_has_an_id_that_a_label_names(client, val):
    features, digits = val
    answers = predict(client, features[:3])
    batch = answers[0]["id"].split("-")[0]
    assert [a["id"] for a in answers] == [f"{batch}-{i}" for i in range(3)]
    assert re.fullmatch(r"[0-9a-f]{32}", batch)
    first, truth = answers[0], int(digits[0])
    given = client.post("/feedback", json={"prediction_id": first["id"], "digit": truth})
    assert given.status_code == 201, given.text
    body = given.json()
    assert body["predicted"] == first["digit"] and body["digit"] == truth
    assert body["correct"] == (first["digit"] == truth) and body["model_version"] == "1"
    outcome = "correct" if body["correct"] else "wrong"
    series = metric(client, "api_feedback_labels_total")
    assert series[f'{{client="api",model_version="1",outcome="{outcome}"}}'] == 1
    same = client.post("/feedback", json={"prediction_id": first["id"], "digit": truth})
    assert same.status_code == 200 and same.json()["created"] is False
    assert metric(client, "api_feedback_labels_total") == series  # counted once


# (body for the id of a prediction labelled 4, status, what the error says)
BAD = [
    (lambda made: {"prediction_id": "f" * 32 + "-0", "digit": 3}, 404, "no prediction ffff"),
    (lambda made: {"prediction_id": made + "0", "digit": 3}, 404, "never made"),
    (lambda made: {"prediction_id": made.upper(), "digit": 3}, 422, "prediction_id: String"),
    (lambda made: {"prediction_id": "abc", "digit": 3}, 422, "prediction_id: String should"),
    (lambda made: {"prediction_id": made + "0" * 40, "digit": 3}, 422, "prediction_id: String"),
    (lambda made: {"prediction_id": made, "digit": 10}, 422, "digit: Input should be less"),
    (lambda made: {"prediction_id": made, "digit": -1}, 422, "digit: Input should be greater"),
    (lambda made: {"prediction_id": made, "digit": "4"}, 422, "digit: Input should be a valid"),
    (lambda made: {"prediction_id": made, "digit": 4.5}, 422, "digit: Input should be a valid"),
    (lambda made: {"prediction_id": made, "digit": True}, 422, "digit: Input should be a valid"),
    (lambda made: {"prediction_id": made}, 422, "digit: Field required"),
    (lambda made: {"prediction_id": made, "digit": 4, "note": "x"}, 422, "note: Extra inputs"),
    (lambda made: {"digit": 4}, 422, "prediction_id: Field required"),
    (lambda made: {"prediction_id": made, "digit": 5}, 409, "already labelled 4: a label is final"),
    (lambda made: '{"digit": 3', 422, "Invalid JSON: EOF while parsing"),
    (lambda made: "digit=3", 415, "send JSON"),
]


@pytest.mark.parametrize(("body", "status", "says"), BAD)
def test_bad_feedback_is_a_4xx_that_names_the_problem_and_changes_nothing(
    client, served, val, body, status, says
):
    (made,) = predict(client, val[0][:1])
    labelled = client.post("/feedback", json={"prediction_id": made["id"], "digit": 4})
    assert labelled.status_code == 201
    before = stored(served)
    sent = body(made["id"])
    if isinstance(sent, str):
        kind = "application/json" if sent.startswith("{") else "text/plain"
        answer = client.post("/feedback", content=sent, headers={"content-type": kind})
    else:
        answer = client.post("/feedback", json=sent)
    assert answer.status_code == status, answer.text
    assert says in answer.json()["error"]
    assert stored(served) == before


def test_a_whole_number_written_7_0_is_the_digit_7(client, val):
    """JSON Schema's `integer` (what /openapi.json says) takes 7.0: so does the API."""
    (made,) = predict(client, val[0][:1])
    first = client.post("/feedback", json={"prediction_id": made["id"], "digit": 7.0})
    assert first.status_code == 201 and first.json()["digit"] == 7, first.text
    again = client.post("/feedback", json={"prediction_id": made["id"], "digit": 7})
    assert again.status_code == 200  # the same label: no change


def test_live_accuracy_follows_the_labels_of_the_served_model(served, val, tmp_path):
    own = served.model_copy(update={"feedback_database_url": f"sqlite:///{tmp_path / 'f.db'}"})
    with TestClient(create_app(own)) as client:
        assert math.isnan(metric(client, "api_live_accuracy")[""])
        made = predict(client, val[0][:40])
        for answer in made[:20]:  # 20 labels saying the model was right: the minimum
            client.post("/feedback", json={"prediction_id": answer["id"], "digit": answer["digit"]})
        assert metric(client, "api_live_labels")[""] == 20
        assert metric(client, "api_live_accuracy")[""] == 1.0
        for answer in made[20:30]:  # then 10 saying it was wrong
            wrong = (answer["digit"] + 1) % 10
            client.post("/feedback", json={"prediction_id": answer["id"], "digit": wrong})
        assert metric(client, "api_live_accuracy")[""] == pytest.approx(20 / 30)


def test_a_restart_loses_no_prediction_and_no_label(served, val):
    with TestClient(create_app(served)) as client:
        made = predict(client, val[0][:5])
        labelled = client.post("/feedback", json={"prediction_id": made[0]["id"], "digit": 0})
        assert labelled.status_code == 201
    # The app has stopped: what it had queued is written. A new one finds all of it.
    with TestClient(create_app(served)) as client:
        again = client.post("/feedback", json={"prediction_id": made[0]["id"], "digit": 0})
        assert again.status_code == 200 and again.json()["created"] is False
        later = client.post("/feedback", json={"prediction_id": made[4]["id"], "digit": 4})
        assert later.status_code == 201, later.text


def test_an_api_keeping_no_predictions_says_so(served, val, tmp_path):
    off = served.model_copy(
        update={"feedback_store": False, "feedback_database_url": f"sqlite:///{tmp_path / 'f.db'}"}
    )
    with TestClient(create_app(off)) as client:
        (made,) = predict(client, val[0][:1])
        answer = client.post("/feedback", json={"prediction_id": made["id"], "digit": 1})
        assert answer.status_code == 503 and "keeps no predictions" in answer.json()["error"]
    assert not (tmp_path / "f.db").exists()


def test_admin_labels_pages_through_the_labelled_inputs_with_the_token_only(client, val, served):
    features, digits = val
    made = predict(client, features[10:15])
    for row, truth in zip(made[:4], digits[10:14], strict=True):  # the fifth stays unlabelled
        client.post("/feedback", json={"prediction_id": row["id"], "digit": int(truth)})
    assert client.get("/admin/labels").status_code == 401
    wrong = client.get("/admin/labels", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    token = {"Authorization": "Bearer token"}
    pages, after = [], ""
    while after is not None:
        page = client.get("/admin/labels", params={"after": after, "limit": 3}, headers=token)
        assert page.status_code == 200, page.text
        pages.append(page.json()["labels"])
        after = page.json()["next"]
    found = [row for page in pages for row in page]
    assert all(len(page) <= 3 for page in pages) and len(pages) >= 2
    assert [row["prediction_id"] for row in found] == sorted(r["prediction_id"] for r in found)
    _, label_count, _ = stored(served)
    assert len(found) == label_count  # every label, each once
    by_id = {row["prediction_id"]: row for row in found}
    assert made[4]["id"] not in by_id
    for row, truth, pixels in zip(made[:4], digits[10:14], features[10:14], strict=True):
        mine = by_id[row["id"]]
        assert (mine["label"], mine["predicted"]) == (truth, row["digit"])
        assert np.allclose(mine["pixels"], pixels)
    too_many = client.get("/admin/labels", params={"limit": 5001}, headers=token)
    assert too_many.status_code == 422
