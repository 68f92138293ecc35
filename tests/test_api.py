"""The model API through the ASGI test client: every route, every bad input.

It serves a real champion, trained once per registry: from MLflow's SQLite store without a
server (the fast tier), and from a real MLflow server (`make test`, marked integration).
"""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import mlflow
import numpy as np
import pytest
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from app import registry
from app.config import Settings
from app.data import load_split
from app.log import json_formatter
from app.registry import CHAMPION
from app.serving.app import create_app
from app.training import train_and_log
from app.training.onnx_model import TOLERANCE
from tests.helpers import champion_of, isolated

TOKEN = "test-admin-token"


@pytest.fixture(
    scope="module",
    params=["local_registry", pytest.param("server", marks=pytest.mark.integration)],
)
def registry_at(request) -> Settings:
    """The settings of an MLflow registry: without a server, then with one."""
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="module")
def served(registry_at, params):
    """Settings whose registry has a champion (a baseline, version 1)."""
    settings = isolated(registry_at).model_copy(update={"admin_token": SecretStr(TOKEN)})
    champion_of(settings, params)
    return settings


@pytest.fixture(scope="module")
def client(served):
    with TestClient(create_app(served)) as client:  # `with`: the lifespan loads the model
        yield client


@pytest.fixture(scope="module")
def val(served):
    return load_split(served.data_dir / "val")


def digit_png(pixels: np.ndarray, size: int = 200, fmt: str = "PNG") -> bytes:
    """A digit as a photo would show it: large, dark ink on light paper."""
    ink = (pixels.reshape(8, 8) * 255 / 16).astype(np.uint8)
    image = Image.fromarray(255 - ink).resize((size, size), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def test_health_and_ready(client):
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"status": "ready", "model_version": "1"}


def test_model_describes_what_is_served(client, served):
    info = client.get("/model").json()
    assert (info["name"], info["version"], info["data_version"]) == (served.model_name, "1", "v1")
    run = MlflowClient().get_run(info["run_id"])
    assert info["metrics"]["val_accuracy"] == run.data.metrics["val_accuracy"]
    assert info["loaded_at"].endswith("Z") or "+00:00" in info["loaded_at"]
    assert info["runtime"] == "onnxruntime"  # from the model's ONNX export
    (family,) = text_string_to_metric_families(
        "\n".join(
            line for line in client.get("/metrics").text.splitlines() if "api_model_info" in line
        )
    )
    assert [(s.labels["version"], s.labels["runtime"], s.value) for s in family.samples] == [
        ("1", "onnxruntime", 1.0)
    ]


def test_the_native_runtime_answers_alike(served, client, val):
    """`WORKBOOK_API_MODEL_RUNTIME=native`: scikit-learn computes, the answers agree."""
    features = val[0][:100].tolist()
    exported = client.post("/predict", json={"instances": features}).json()["predictions"]
    native_settings = served.model_copy(update={"api_model_runtime": "native"})
    with TestClient(create_app(native_settings)) as native:
        assert native.get("/model").json()["runtime"] == "scikit-learn"
        answers = native.post("/predict", json={"instances": features}).json()["predictions"]
    assert [a["digit"] for a in answers] == [a["digit"] for a in exported]
    np.testing.assert_allclose(
        [a["probabilities"] for a in answers],
        [a["probabilities"] for a in exported],
        atol=TOLERANCE,
    )


def test_without_a_drift_window_the_api_answers_and_its_drift_gauges_stay_nan(served, val):
    """`WORKBOOK_API_DRIFT_WINDOW=false` (what `make bench` measures monitoring's cost with)."""
    settings = served.model_copy(update={"api_drift_window": False})
    with TestClient(create_app(settings)) as api:
        answer = api.post("/predict", json={"instances": val[0][:30].tolist()})
        metrics = api.get("/metrics").text
    assert answer.status_code == 200 and len(answer.json()["predictions"]) == 30
    assert "api_drift_window_inputs NaN" in metrics
    assert 'api_predictions_total{digit="' in metrics  # the other metrics go on


def test_predict_matches_the_model(client, val, served):
    features, labels = val
    answer = client.post("/predict", json={"instances": features[:50].tolist()})
    assert answer.status_code == 200
    body = answer.json()
    digits = [p["digit"] for p in body["predictions"]]
    assert np.mean(np.array(digits) == labels[:50]) >= 0.9
    for prediction in body["predictions"]:
        assert len(prediction["probabilities"]) == 10
        assert abs(sum(prediction["probabilities"]) - 1) < 1e-4
        assert prediction["digit"] == int(np.argmax(prediction["probabilities"]))
    assert body["model"]["name"] == served.model_name and body["model"]["version"] == "1"


def test_request_id_is_returned_and_kept(client, val):
    row = val[0][:1].tolist()
    assert len(client.post("/predict", json={"instances": row}).headers["x-request-id"]) == 32
    echoed = client.post("/predict", json={"instances": row}, headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"


def test_one_json_log_line_per_request_without_pixels(client, val):
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    access = logging.getLogger("app.serving.access")
    access.addHandler(handler)
    try:
        client.post(
            "/predict", json={"instances": val[0][:3].tolist()}, headers={"X-Request-ID": "r1"}
        )
    finally:
        access.removeHandler(handler)
    (record,) = records
    line = json.loads(json_formatter().format(record))
    assert line["request_id"] == "r1" and line["route"] == "/predict" and line["status"] == 200
    assert line["model_version"] == "1" and len(line["digits"]) == 3
    assert line["latency_ms"] > 0
    assert "instances" not in line and "pixels" not in line


def test_metrics_count_requests_predictions_and_the_model(client, val):
    client.post("/predict", json={"instances": val[0][:4].tolist()})
    text = client.get("/metrics").text
    assert 'api_requests_total{client="api",method="POST",route="/predict",status="200"}' in text
    assert "api_request_duration_seconds_bucket" in text
    assert (
        sum(
            float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith("api_predictions_total{")
        )
        >= 4
    )
    assert "api_prediction_confidence_count" in text
    assert "api_model_version 1.0" in text
    assert 'api_model_loads_total{outcome="success"} 1.0' in text
    assert "api_requests_in_flight" in text


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_predict_image(client, val, fmt):
    features, labels = val
    right = 0
    for row in range(10):
        files = {
            "file": (
                f"digit.{fmt.lower()}",
                digit_png(features[row * 36], fmt=fmt),
                f"image/{fmt.lower()}",
            )
        }
        answer = client.post("/predict/image", files=files)
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["pixels"]) == 64
        right += answer.json()["predictions"][0]["digit"] == labels[row * 36]
    assert right >= 8


def test_an_explained_prediction_credits_its_pixels_and_the_top_ones_decide(client, val):
    features = val[0][:16]  # the most one request may explain
    answer = client.post("/predict?explain=true", json={"instances": features.tolist()})
    assert answer.status_code == 200, answer.text
    credits = []
    for row, prediction in zip(features, answer.json()["predictions"], strict=True):
        explanation = prediction["explanation"]
        assert explanation["method"] == "shapley_sampling" and explanation["baseline"] == "blank"
        assert explanation["target"] == prediction["digit"]
        probability = prediction["probabilities"][prediction["digit"]]
        assert explanation["probability"] == pytest.approx(probability, abs=1e-5)
        promised = explanation["probability"] - explanation["baseline_probability"]
        assert sum(explanation["pixels"]) == pytest.approx(promised, abs=1e-4)  # 6 decimals x 64
        assert all(c == 0 for c, ink in zip(explanation["pixels"], row, strict=True) if ink == 0)
        credits.append(explanation["pixels"])
    # Blank each digit's 8 most credited pixels, then 8 random ones, and ask again.
    rows = np.arange(len(features))[:, None]
    top = np.argsort(-np.array(credits), axis=1)[:, :8]
    anywhere = np.random.default_rng(0).random((len(features), 64)).argsort(axis=1)[:, :8]
    digits = [p["digit"] for p in answer.json()["predictions"]]
    changed = {}
    for name, pixels in (("top", top), ("random", anywhere)):
        masked = features.copy()
        masked[rows, pixels] = 0
        again = client.post("/predict", json={"instances": masked.tolist()}).json()
        now = [p["digit"] for p in again["predictions"]]
        changed[name] = np.mean(np.array(now) != digits)
    assert changed["top"] >= changed["random"] + 0.5, changed


def test_explanations_are_off_by_default_and_a_bad_ask_is_refused(client, val):
    rows = val[0][:17].tolist()
    plain = client.post("/predict", json={"instances": rows[:1]}).json()["predictions"][0]
    assert "explanation" not in plain
    off = client.post("/predict?explain=false", json={"instances": rows[:1]}).json()
    assert "explanation" not in off["predictions"][0]
    unclear = client.post("/predict?explain=maybe", json={"instances": rows[:1]})
    assert unclear.status_code == 422
    assert unclear.json()["error"].startswith("invalid request: query.explain: Input should be")
    many = client.post("/predict?explain=true", json={"instances": rows})
    assert many.status_code == 422 and "at most 16 digits a request, not 17" in many.json()["error"]
    document = client.get("/openapi.json").json()
    for path in ("/predict", "/predict/image"):
        assert [p["name"] for p in document["paths"][path]["post"]["parameters"]] == ["explain"]
    image = {"file": ("digit.png", digit_png(val[0][0]), "image/png")}
    assert "explanation" not in client.post("/predict/image", files=image).json()["predictions"][0]
    explained = client.post("/predict/image?explain=1", files=image).json()["predictions"][0]
    assert len(explained["explanation"]["pixels"]) == 64


ROW = [1.0] * 64


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"instances": [[1.0] * 63]}, 422, "instances.0: List should have at least 64 items"),
        ({"instances": [[1.0] * 65]}, 422, "at most 64 items"),
        (
            {"instances": [[*ROW[:-1], 17]]},
            422,
            "instances.0.63: Input should be less than or equal to 16",
        ),
        ({"instances": [[*ROW[:-1], -1]]}, 422, "greater than or equal to 0"),
        ({"instances": [[*ROW[:-1], "7"]]}, 422, "Input should be a valid number"),
        ({"instances": [[*ROW[:-1], True]]}, 422, "Input should be a valid number"),
        ({"instances": [[*ROW[:-1], None]]}, 422, "Input should be a valid number"),
        ({"instances": []}, 422, "instances: List should have at least 1 item"),
        ({"instances": ROW}, 422, "Input should be a valid array"),
        ({"rows": [ROW]}, 422, "instances: Field required"),
        ({"instances": [ROW], "extra": 1}, 422, "extra: Extra inputs are not permitted"),
        ({"instances": [ROW] * 1001}, 422, "too many instances: 1001 > 1000"),
    ],
)
def test_bad_json_input_is_a_4xx_that_names_the_problem(client, body, status, says):
    answer = client.post("/predict", json=body)
    assert answer.status_code == status
    assert says in answer.json()["error"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_refused(client, literal):
    raw = '{"instances": [[' + ", ".join(["1"] * 63 + [literal]) + "]]}"
    answer = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert answer.status_code == 422
    assert "Input should be a finite number" in answer.json()["error"]


@pytest.mark.parametrize(
    ("content", "content_type", "status", "says"),
    [
        ('{"instances": [[1, 2', "application/json", 422, "Invalid JSON: EOF while parsing"),
        ("instances=1", "text/plain", 415, "send JSON (Content-Type: application/json)"),
        ("", "application/json", 422, "Field required"),
    ],
)
def test_malformed_bodies(client, content, content_type, status, says):
    answer = client.post("/predict", content=content, headers={"content-type": content_type})
    assert answer.status_code == status
    assert says in answer.json()["error"]


def test_a_body_over_the_limit_is_refused_before_it_is_read(client, served):
    too_big = b"[" * (served.api_max_body_bytes + 1)
    answer = client.post("/predict", content=too_big, headers={"content-type": "application/json"})
    assert answer.status_code == 413
    assert f"the limit is {served.api_max_body_bytes} bytes" in answer.json()["error"]


def test_the_largest_batch_fits_in_the_body_limit_at_full_precision(client, served):
    """Any float JSON can write (17 significant digits) for every pixel of the most rows allowed."""
    rows = np.random.default_rng(0).uniform(0, 16, (served.api_max_instances, 64))
    body = json.dumps({"instances": rows.tolist()}).encode()
    assert len(body) > 1_000_000  # more than the old limit refused
    answer = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"]) == served.api_max_instances


def test_a_streamed_body_over_the_limit_is_refused(client, served):
    def chunks():
        for _ in range(served.api_max_body_bytes // 10_000 + 2):
            yield b" " * 10_000

    answer = client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert answer.status_code == 413


@pytest.mark.parametrize("path", ["/predict", "/feedback"])  # the routes reading their own body
def test_a_client_gone_before_its_body_arrived_is_a_400_not_a_500(client, caplog, path):
    """The connection closed before the body was whole (ASGI's `http.disconnect`): a 400 in the
    log line and the metrics, as FastAPI answers one, never a 500 with a traceback."""
    sent: list[dict] = []

    async def disconnected() -> dict:
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    with caplog.at_level(logging.INFO):
        client.portal.call(client.app, scope, disconnected, send)
    assert sent[0]["status"] == 400
    assert "closed" in json.loads(sent[1]["body"])["error"]
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


def blank_png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height), 255).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("file", "status", "says"),
    [
        (("x.png", b"\x89PNG not really", "image/png"), 422, "not a readable PNG or JPEG image"),
        (("x.gif", b"GIF89a", "image/gif"), 415, "upload a PNG or JPEG image, not 'image/gif'"),
        (("x.txt", b"hello", "text/plain"), 415, "not 'text/plain'"),
        (("huge.png", blank_png(6000, 5000), "image/png"), 413, "6000x5000 pixels"),
        (("blank.png", blank_png(64, 64), "image/png"), 422, "no ink stands out"),
    ],
)
def test_bad_images_are_a_4xx_that_names_the_problem(client, file, status, says):
    answer = client.post("/predict/image", files={"file": file})
    assert answer.status_code == status
    assert says in answer.json()["error"]


def test_image_upload_needs_a_file(client):
    answer = client.post("/predict/image", data={"nothing": "here"})
    assert answer.status_code == 422
    assert "file: Field required" in answer.json()["error"]


def test_reload_needs_the_admin_token(client):
    assert client.post("/admin/reload").status_code == 401
    wrong = client.post("/admin/reload", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "admin token" in wrong.json()["error"]
    right = client.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert right.status_code == 200 and right.json()["swapped"] is False


def test_unknown_routes_and_methods_are_4xx(client):
    assert client.get("/nope").status_code == 404
    assert client.get("/predict").status_code == 405


def test_without_a_champion_the_api_waits_and_then_picks_one_up(registry_at, params):
    settings = isolated(registry_at).model_copy(update={"admin_token": SecretStr(TOKEN)})
    with TestClient(create_app(settings)) as client:
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert f"no model has the alias @{CHAMPION}" in ready.json()["error"]
        answer = client.post("/predict", json={"instances": [ROW]})
        assert answer.status_code == 503 and "make train" in answer.json()["error"]
        champion_of(settings, params)
        reload = client.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        assert reload.json() == {"swapped": True, "version": "1", "problem": None}
        assert client.post("/predict", json={"instances": [ROW]}).status_code == 200


def artifact_folder(settings: Settings, location: str) -> Path:
    """Where an artifact location is on disk: the server's artifact store or the SQLite one's."""
    if location.startswith("mlflow-artifacts:/"):
        relative = location.removeprefix("mlflow-artifacts:/")
        return settings.state_dir / "mlflow" / "artifacts" / relative
    return Path(urlparse(location).path)


def test_a_model_that_fails_to_load_leaves_the_old_one_serving(served, params):
    with TestClient(create_app(served)) as client:
        before = client.get("/model").json()["version"]
        # A version whose files vanished from the artifact store: registered, but unloadable.
        logged = train_and_log(served, params, "baseline", overrides={"C": 0.25})
        broken = registry.register_challenger(served, logged.model_uri)
        location = mlflow.get_logged_model(
            logged.model_uri.removeprefix("models:/")
        ).artifact_location
        shutil.rmtree(artifact_folder(served, location))
        client_registry = MlflowClient()
        client_registry.set_registered_model_alias(served.model_name, CHAMPION, broken.version)
        try:
            reload = client.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
            assert reload.status_code == 200
            assert reload.json()["version"] == before and reload.json()["swapped"] is False
            assert f"loading version {broken.version} failed" in reload.json()["problem"]
            assert (
                client.post("/predict", json={"instances": [ROW]}).json()["model"]["version"]
                == before
            )
            assert 'api_model_loads_total{outcome="failure"} 1.0' in client.get("/metrics").text
        finally:
            client_registry.set_registered_model_alias(served.model_name, CHAMPION, before)


def test_the_playground_page_is_served_whole_and_self_contained(client, served):
    home = client.get("/", follow_redirects=False)
    assert home.status_code == 307 and home.headers["location"] == "/playground"
    page = client.get("/playground")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    html = page.text
    assert f'data-port="{served.mlflow_port}"' in html
    assert f'data-port="{served.grafana_port}"' in html
    assert "{{" not in html  # every placeholder filled
    # Nothing from elsewhere: no script, style, font or image by URL, no CDN.
    assert not re.search(r"""(src|href)=["'](https?:)?//|@import|url\(""", html)
    assert "/predict/image" in html and '"X-Client": "playground"' in html


def test_playground_requests_are_counted_apart_and_a_made_up_client_is_not(client, val):
    rows = {"instances": val[0][:1].tolist()}
    client.post("/predict", json=rows, headers={"X-Client": "playground"})
    client.post("/predict", json=rows, headers={"X-Client": "anything-else"})
    text = client.get("/metrics").text
    series = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith("api_requests_total{")
    }
    labels = 'client="playground",method="POST",route="/predict",status="200"'
    assert series[f"api_requests_total{{{labels}}}"] == 1
    assert not any("anything-else" in name for name in series)


def test_serving_from_the_export_loads_neither_torch_nor_scikit_learn(served, val):
    """What lets the API image leave torch out: a fresh process that loads the champion and
    answers a digit has imported onnxruntime, and neither library the model was trained with."""
    probe = (
        "import sys, json\n"
        "from fastapi.testclient import TestClient\n"
        "from app.config import Settings\n"
        "from app.serving.app import create_app\n"
        "settings = Settings.model_validate_json(sys.stdin.read())\n"
        "with TestClient(create_app(settings)) as client:\n"
        f"    answer = client.post('/predict', json={{'instances': [{val[0][0].tolist()}]}})\n"
        "    assert answer.status_code == 200, answer.text\n"
        "loaded = [m for m in ('onnxruntime', 'torch', 'sklearn', 'skops') if m in sys.modules]\n"
        "print(json.dumps(loaded))\n"
    )
    settings = served.model_copy(update={"admin_token": None}).model_dump_json()
    done = subprocess.run(
        [sys.executable, "-c", probe], input=settings, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1]) == ["onnxruntime"]
