"""The compose stack as a learner runs it (`docker compose up -d --build`, `docker compose run
trainer`), built and run by a real Docker engine, checked from the host through its ports."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient
from playwright.sync_api import sync_playwright
from pydantic import SecretStr

from app.compose import Compose
from app.config import REPO_ROOT, Settings, load_params
from app.data.dvc import ensure_data, read_pin
from app.data.field import make_field_version
from app.data.images import load_split
from app.drawing import STROKES, scribbles, to_png
from app.monitoring.alerts import query
from app.poll import wait_for
from app.registry import CHAMPION
from app.training.tracking import git_commit
from tests.helpers import browser_path, huge_pages_possible, predict_drawing, url

pytestmark = pytest.mark.compose
MODEL = Settings(_env_file=None).model_name
RULES = REPO_ROOT / "compose" / "prometheus" / "rules.yml"
LINKED = ("mlflow", "grafana")  # the playground's links to other services


def champion():
    return MlflowClient(url("mlflow")).get_model_version_by_alias(MODEL, CHAMPION)


def val_digits() -> tuple[np.ndarray, np.ndarray]:
    return load_split(REPO_ROOT / "data" / "val")


def predict(rows: np.ndarray, timeout: float = 10) -> httpx.Response:
    body = {"instances": rows.tolist()}
    return httpx.post(f"{url('api')}/predict", json=body, timeout=timeout)


def test_both_compose_versions_accept_the_files(images):
    """`config` resolves and validates every variable, anchor and override (v1 here)."""
    Compose(env=images).run("config", "--quiet")
    scale = (REPO_ROOT / "docker-compose.yml", REPO_ROOT / "compose" / "scale.yml")
    Compose(files=scale, env=images).run("config", "--quiet")


def test_a_missing_password_fails_loudly(images, tmp_path):
    env = {k: v for k, v in images.items() if k != "WORKBOOK_GRAFANA_ADMIN_PASSWORD"}
    empty = tmp_path / "empty.env"
    empty.touch()
    project = Compose(env=env | {"WORKBOOK_GRAFANA_ADMIN_PASSWORD": ""})
    output = project.run("--env-file", str(empty), "config", "--quiet", check=False)
    assert "make setup writes one" in output, output


def test_the_trainer_promoted_a_champion_with_its_lineage(stack):
    version = champion()
    tags = MlflowClient(url("mlflow")).get_run(version.run_id).data.tags
    pin = read_pin(REPO_ROOT / "data.dvc")
    assert (tags["data_version"], tags["data_md5"]) == (pin.version, pin.md5)
    assert tags["git_commit"] == git_commit(REPO_ROOT)  # the host's, read through the mount


def test_the_api_serves_the_champion_exactly(stack):
    version = champion()
    wait_for(
        lambda: httpx.get(f"{url('api')}/model").json().get("version") == version.version,
        30,
        what=f"the API to serve v{version.version}",
    )
    X, y = val_digits()
    answer = predict(X)
    assert answer.status_code == 200, answer.text
    digits = np.array([p["digit"] for p in answer.json()["predictions"]])
    logged = MlflowClient(url("mlflow")).get_run(version.run_id).data.metrics["val_accuracy"]
    assert float(np.mean(digits == y)) == pytest.approx(logged, abs=1e-12)


def test_the_playground_answers_a_drawing_with_the_champion(stack):
    """The page in Chromium against the compose API: links to the published ports, a drawn
    digit answered by the champion, counted by Prometheus as playground traffic."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path(), args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(f"{url('api')}/")
        links = [page.locator(f"#{name}-link").get_attribute("href") for name in LINKED]
        page.get_by_label("Predict when I pause drawing").uncheck()
        answer = predict_drawing(page, STROKES[7])
        browser.close()
    assert links == [f"{url(name)}/" for name in LINKED]
    assert answer["model"]["version"] == champion().version

    def counted():
        promql = 'api_requests_total{client="playground", route="/predict/image"}'
        found = httpx.get(f"{url('prometheus')}/api/v1/query", params={"query": promql})
        return found.json()["data"]["result"]

    wait_for(counted, 60, every=1)


def test_prometheus_scrapes_the_api_and_has_the_rules(stack):
    def api_up():
        targets = httpx.get(f"{url('prometheus')}/api/v1/targets").json()["data"]
        return [t for t in targets["activeTargets"] if t["labels"]["job"] == "api"
                and t["health"] == "up"]  # fmt: skip

    wait_for(api_up, 30, every=1)
    groups = httpx.get(f"{url('prometheus')}/api/v1/rules").json()["data"]["groups"]
    loaded = {rule["name"] for group in groups for rule in group["rules"]}
    written = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    assert loaded == written
    managers = httpx.get(f"{url('prometheus')}/api/v1/alertmanagers").json()["data"]
    assert [m["url"] for m in managers["activeAlertmanagers"]] == [
        "http://alertmanager:9093/api/v2/alerts"
    ]


# Run inside the api container: what the API's process runs on. Under compose's `init`, pid 1 is
# the init, not the API: the API is the Python process with the app among its arguments.
THE_API_S_MEMORY = """
import json, pathlib
from app.allocator import in_use
commands = {path.parent.name: path.read_bytes().split(b"\\0")
            for path in pathlib.Path("/proc").glob("[0-9]*/cmdline")}
(pid,) = [pid for pid, args in commands.items()
          if b"python" in args[0] and b"app.serving.app:create_app" in args]
print(json.dumps(in_use(pid)))
"""


def test_the_api_runs_on_mimalloc_s_huge_pages(stack):
    """The image's environment (compose/Dockerfile), as the API's process maps it."""
    project, _ = stack
    memory = json.loads(project.run("exec", "-T", "api", "python", "-c", THE_API_S_MEMORY))
    assert memory["allocator"] == "mimalloc"
    assert (memory["huge_pages_mib"] > 0) == huge_pages_possible(), memory


def test_the_retrainer_reads_the_live_evidence_from_compose_prometheus(stack):
    """`python -m app.retraining promote` in the retrainer's container asks compose's Prometheus
    (WORKBOOK_PROMETHEUS_SERVER_URL) what the API served, not an address of its own container."""
    project, _ = stack
    digits = val_digits()[0][:5]
    wait_for(lambda: predict(digits).status_code == 200, 60, what="a 200 from /predict")
    promql = 'sum(api_role_requests_total{role="champion"})'

    def on_the_host() -> float:
        return sum(float(series["value"][1]) for series in query(url("prometheus"), promql))

    wait_for(lambda: on_the_host() > 0, 60, every=1, what="Prometheus to count the champion")
    script = (
        "from app.config import get_settings; from app.retraining.promote import counted; "
        f"print(counted(get_settings(), {promql!r}).get('', 0.0))"
    )
    output = project.run("exec", "-T", "retrainer", "python", "-c", script)
    assert float(output.strip().splitlines()[-1]) > 0, output


def test_an_alert_reaches_the_alert_log_through_alertmanager(stack):
    alert = [{"labels": {"alertname": "ComposeTestAlert", "severity": "info"},
              "annotations": {"summary": "sent by tests/containers"}}]  # fmt: skip
    sent = httpx.post(f"{url('alertmanager')}/api/v2/alerts", json=alert)
    assert sent.status_code == 200, sent.text

    def logged():
        return "ComposeTestAlert" in httpx.get(f"{url('alert-log')}/alerts").text

    wait_for(logged, 45, every=1)


def test_up_again_changes_nothing(stack):
    project, services = stack
    before = {c["Id"]: c["State"]["StartedAt"] for c in project.containers()}
    project.run("up", "-d", *services)
    after = {c["Id"]: c["State"]["StartedAt"] for c in project.containers()}
    assert after == before


def test_the_api_comes_back_after_its_process_dies(stack):
    project, _ = stack
    (container,) = project.containers("api")
    X, _ = val_digits()
    failures: list[int] = []
    stop = threading.Event()

    def traffic():
        while not stop.is_set():
            try:
                failures.append(predict(X[:5], timeout=2).status_code)
            except httpx.HTTPError:
                failures.append(0)
            time.sleep(0.05)

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        project.run("exec", "-T", "api", "sh", "-c", "kill 1")  # the process the image runs
        project.wait_healthy(["api"], timeout=90)
        wait_for(lambda: predict(X[:5]).status_code == 200, 30, what="a 200 from /predict")
    finally:
        stop.set()
        sender.join()
    (restarted,) = project.containers("api")
    assert restarted["Id"] == container["Id"]
    assert restarted["RestartCount"] == container["RestartCount"] + 1
    assert failures[-1] == 200 and 0 in failures  # it was down, and it came back


def test_the_api_keeps_serving_while_mlflow_is_down(stack):
    project, _ = stack
    X, _ = val_digits()
    served = httpx.get(f"{url('api')}/model").json()["version"]
    project.run("stop", "mlflow")
    try:
        deadline = time.monotonic() + 12  # more than two of the API's registry polls
        while time.monotonic() < deadline:
            assert predict(X[:10]).status_code == 200
            time.sleep(0.5)
        assert httpx.get(f"{url('api')}/model").json()["version"] == served
    finally:
        project.run("start", "mlflow")
        project.wait_healthy(["mlflow"])


def test_images_carry_only_their_role(stack):
    project, _ = stack

    def inside(service: str, *command: str) -> str:
        image = project.containers(service)[0]["Config"]["Image"]
        run = ["docker", "run", "--rm", "--entrypoint", command[0], image, *command[1:]]
        done = subprocess.run(run, capture_output=True, text=True, check=True)
        return done.stdout

    tools = {"jupyterlab", "papermill", "pytest", "nbmake", "testbook", "ipykernel"}
    # The API serves every model from its ONNX export: no torch, no exporter, no training
    training = {"dvc", "mlflow", "torch", "onnx", "skl2onnx", "matplotlib"}
    for service, absent in {"api": tools | training, "retrainer": tools}.items():
        listed = inside(service, "pip", "list", "--format=freeze").splitlines()
        packages = {line.split("==")[0].lower() for line in listed}
        assert not packages & absent, f"{service} carries {packages & absent}"
        assert not [p for p in packages if p.startswith("nvidia")], f"{service}: CUDA packages"
        assert inside(service, "id", "-u").strip() == "10001", f"{service} runs as root"
    cuda = inside("retrainer", "python", "-c", "import torch; print(torch.version.cuda)")
    assert cuda.strip() == "None", f"the trainer's torch is built for CUDA {cuda}"


def test_images_are_labelled_and_measured(stack):
    project, _ = stack
    for service in ("mlflow", "api", "retrainer"):
        image = project.containers(service)[0]["Config"]["Image"]
        inspect = subprocess.run(["docker", "image", "inspect", image], capture_output=True,
                                 text=True, check=True)  # fmt: skip
        (details,) = json.loads(inspect.stdout)
        labels = details["Config"]["Labels"]
        for key in ("source", "licenses", "revision", "title"):
            assert labels.get(f"org.opencontainers.image.{key}"), f"{image}: no {key} label"
        assert details["Config"]["Healthcheck"]["Test"], f"{image}: no HEALTHCHECK"
        print(f"{image}: {details['Size'] / 1e6:.0f} MB")


def test_labels_from_the_field_become_the_model_the_api_serves(stack):
    """The loop in compose: drawings predicted and labelled through the API, the API restarted
    (its store is a volume: nothing lost), `python -m app.data field --api` on a clone of the
    repository, the trainer image retraining on it, and the API serving the new model, which
    reads fresh drawings better than the one before."""
    project, _ = stack
    api = httpx.Client(base_url=url("api"), timeout=30, headers={"X-Client": "playground"})
    wait_for(lambda: api.get("/model").status_code == 200, 30, what="the trainer's champion")

    def read(drawings) -> list[dict]:
        answers = []
        for drawing in drawings:
            upload = {"file": ("digit.png", to_png(drawing), "image/png")}
            answer = api.post("/predict/image", files=upload)
            assert answer.status_code == 200, answer.text
            answers.append(answer.json()["predictions"][0])
        return answers

    fresh = scribbles(seed=2, per_digit=10)  # never labelled, never trained on
    truth = np.array([drawing.digit for drawing in fresh])
    before = np.mean([a["digit"] for a in read(fresh)] == truth)
    drawings = scribbles(seed=1, per_digit=20)
    made = read(drawings)
    for answer, drawing in zip(made, drawings, strict=True):
        label = {"prediction_id": answer["id"], "digit": drawing.digit}
        assert api.post("/feedback", json=label).status_code == 201
    project.run("restart", "api")
    project.wait_healthy(["api"])
    for answer, drawing in zip(made[:5], drawings[:5], strict=True):  # kept across the restart
        label = {"prediction_id": answer["id"], "digit": drawing.digit}
        assert api.post("/feedback", json=label).status_code == 200

    folder = Path(tempfile.mkdtemp(prefix="field-loop-"))
    try:
        folder.chmod(0o755)  # the trainer's user (10001) reads the clone through a mount
        clone = folder / "repo"
        subprocess.run(["git", "clone", "--quiet", str(REPO_ROOT), str(clone)], check=True)
        settings = Settings(
            root=clone,
            mlflow_tracking_uri=url("mlflow"),
            admin_token=SecretStr(project.env["WORKBOOK_ADMIN_TOKEN"]),
            _env_file=None,
        )
        ensure_data(settings, load_params())
        done = make_field_version(settings, load_params(), api_url=url("api"))
        assert done.version == "v1+field1" and done.kept >= len(drawings) - 5, done.summary()
        identity = ["-c", "user.name=compose test", "-c", "user.email=test@example.com"]
        commit = ["git", *identity, "commit", "--quiet", "-m", done.commit_message(), "data.dvc"]
        subprocess.run(commit, cwd=clone, check=True)
        retrained = project.run(
            "run", "--rm", "-v", f"{clone}:/clone:ro", "-e", "WORKBOOK_ROOT=/clone",
            "-e", "WORKBOOK_PARAMS_PATH=/clone/params.yaml",
            "trainer", "python", "-m", "app.retraining", timeout=900,
        )  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    record = json.loads(next(line for line in retrained.splitlines()[::-1] if '"decision"' in line))
    assert (record["data_version"], record["decision"]) == ("v1+field1", "promoted"), record
    wait_for(
        lambda: api.get("/model").json()["data_version"] == "v1+field1", 60, what="the new model"
    )
    after = np.mean([a["digit"] for a in read(fresh)] == truth)
    print(f"fresh drawings read: {before:.2f} before the loop, {after:.2f} after")
    assert after >= before + 0.03 and after >= 0.9, (before, after)
