"""Tracking and the registry against a real `mlflow server`, started in a temporary folder."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from app import registry
from app.config import Settings
from app.data import load_split, read_pin
from app.stack import free_port
from app.training import MlflowUnavailable, setup_mlflow, train_and_log
from app.training.onnx_model import TOLERANCE
from tests.helpers import isolated

pytestmark = pytest.mark.integration
WEAK = {"C": 0.0005}  # a baseline this regularised lands near 0.83 on v1


@pytest.fixture
def settings(server):
    """The server's settings, with a registered-model name of this test's own."""
    return isolated(server)


def test_a_run_records_params_metrics_images_model_and_lineage(settings, params):
    logged = train_and_log(settings, params, "baseline")
    run = MlflowClient().get_run(logged.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["family"] == "baseline"
    assert float(run.data.params["C"]) == params.train.baseline.C
    assert {f"val_recall_{digit}" for digit in range(10)} <= set(run.data.metrics)
    assert run.data.metrics["val_accuracy"] == logged.metrics["val_accuracy"] >= 0.95
    pin = read_pin(settings.dvc_file)
    assert run.data.tags["data_version"] == pin.version
    assert run.data.tags["data_md5"] == pin.md5
    assert run.data.tags["train_size"] == str(len(load_split(settings.data_dir / "train")[1]))
    assert "git_commit" in run.data.tags
    artifacts = {a.path for a in MlflowClient().list_artifacts(logged.run_id, "plots")}
    assert artifacts == {"plots/confusion_matrix.png", "plots/misclassified.png"}
    model = mlflow.pyfunc.load_model(logged.model_uri)
    assert tuple(model.metadata.signature.inputs.to_dict()[0]["tensor-spec"]["shape"]) == (-1, 64)
    assert model.unwrap_python_model().runtime == "onnxruntime"
    assert 0 <= run.data.metrics["onnx_max_difference"] <= TOLERANCE
    native = mlflow.pyfunc.load_model(logged.model_uri, model_config={"runtime": "native"})
    assert native.unwrap_python_model().runtime == "scikit-learn"


def test_cnn_logs_loss_and_accuracy_per_epoch_and_its_onnx_export(settings, params):
    logged = train_and_log(settings, params, "cnn", overrides={"epochs": 3})
    client = MlflowClient()
    for metric in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
        assert [m.step for m in client.get_metric_history(logged.run_id, metric)] == [0, 1, 2]
    run = client.get_run(logged.run_id)
    assert run.data.params["epochs"] == "3"
    assert 0 <= run.data.metrics["onnx_max_difference"] <= TOLERANCE
    # Loaded as the API loads it: through ONNX Runtime by default, PyTorch when asked
    features = load_split(settings.data_dir / "val")[0]
    answers = {}
    for runtime, expected in (("auto", "onnxruntime"), ("native", "pytorch")):
        model = mlflow.pyfunc.load_model(logged.model_uri, model_config={"runtime": runtime})
        assert model.unwrap_python_model().runtime == expected
        answers[expected] = model.predict(features)
    np.testing.assert_allclose(answers["onnxruntime"], answers["pytorch"], atol=TOLERANCE)
    with pytest.raises(ValueError, match="runtime 'fastest' is none of auto, onnxruntime"):
        mlflow.pyfunc.load_model(logged.model_uri, model_config={"runtime": "fastest"})


def test_gate_promotes_the_first_and_refuses_worse(settings, params):
    good = train_and_log(settings, params, "baseline")
    first = registry.register_challenger(settings, good.model_uri)
    assert registry.gate(settings, params, first.version).promoted

    weak = train_and_log(settings, params, "baseline", overrides=WEAK)
    below_floor = registry.register_challenger(settings, weak.model_uri)
    decision = registry.gate(settings, params, below_floor.version)
    assert not decision.promoted and "below the minimum" in decision.reason

    lenient = params.model_copy(
        update={"registry": params.registry.model_copy(update={"min_accuracy": 0.5})}
    )
    worse = registry.register_challenger(settings, weak.model_uri)
    assert worse.version == below_floor.version  # the same model: not registered twice
    decision = registry.gate(settings, lenient, worse.version)
    assert not decision.promoted and f"worse than champion v{first.version}" in decision.reason

    assert registry.version_by_alias(settings, "champion").version == first.version
    assert registry.version_by_alias(settings, "challenger").version == worse.version
    tags = MlflowClient().get_model_version(settings.model_name, worse.version).tags
    assert tags["gate.decision"] == "rejected" and tags["gate.champion_version"] == first.version


def test_a_rerun_adds_no_look_alike_version_and_keeps_the_champion(settings, params):
    first = train_and_log(settings, params, "baseline")
    champion = registry.register_challenger(settings, first.model_uri).version
    assert registry.gate(settings, params, champion).promoted
    rerun = train_and_log(settings, params, "baseline")  # same data, params and seed
    assert rerun.run_id != first.run_id and rerun.model_uri != first.model_uri
    again = registry.register_challenger(settings, rerun.model_uri)
    decision = registry.gate(settings, params, again.version)
    assert again.version == champion and decision.promoted
    assert decision.reason == f"v{champion} is already the champion: nothing changes"
    versions = MlflowClient().search_model_versions(f"name = '{settings.model_name}'")
    assert [v.version for v in versions] == [champion]
    # A model that learned something else, even at (nearly) equal accuracy, is a new version.
    tied = train_and_log(settings, params, "baseline", overrides={"C": 0.4}, label="tied")
    newer = registry.register_challenger(settings, tied.model_uri)
    assert newer.version != champion
    assert MlflowClient().get_run(tied.run_id).info.run_name == "baseline-tied-v1"
    tie = registry.gate(settings, params, newer.version)
    gap = tie.champion_accuracy - tie.challenger_accuracy
    assert gap <= params.registry.tolerance and tie.promoted, (gap, tie.reason)  # newer wins


def test_champion_loads_by_alias_and_predicts_digits(settings, params):
    logged = train_and_log(settings, params, "baseline")
    version = registry.register_challenger(settings, logged.model_uri)
    registry.gate(settings, params, version.version)
    model = mlflow.pyfunc.load_model(f"models:/{settings.model_name}@champion")
    features, labels = load_split(settings.data_dir / "val")
    output = model.predict(features)
    assert (output["digit"].to_numpy() == labels).mean() == logged.metrics["val_accuracy"]
    np.testing.assert_allclose(output.filter(like="p_").sum(axis=1), 1, atol=1e-5)


def test_a_failed_run_is_marked_failed_and_the_registry_is_untouched(settings, params, monkeypatch):
    logged = train_and_log(settings, params, "baseline")
    registry.gate(
        settings, params, registry.register_challenger(settings, logged.model_uri).version
    )
    versions_before = MlflowClient().search_model_versions(f"name = '{settings.model_name}'")

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash in the middle of training")

    monkeypatch.setattr("app.training.tracking.train", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_and_log(settings, params, "cnn")
    failed = mlflow.search_runs(
        experiment_names=[settings.experiment_name],
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )[0]
    assert failed.info.status == "FAILED"
    versions_after = MlflowClient().search_model_versions(f"name = '{settings.model_name}'")
    assert len(versions_after) == len(versions_before)
    assert registry.version_by_alias(settings, "champion").version == versions_before[0].version


def test_the_trainer_cli_trains_registers_and_gates(server):
    name = f"cli-{uuid.uuid4().hex[:8]}"
    env = os.environ | {
        "WORKBOOK_ROOT": str(server.root),
        "WORKBOOK_MLFLOW_PORT": str(server.mlflow_port),
        "WORKBOOK_MODEL_NAME": name,
    }
    done = subprocess.run(
        [sys.executable, "-m", "app.training", "--family", "baseline", "--promote"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "gate: version 1 promoted (first champion" in done.stderr
    setup_mlflow(server)
    assert MlflowClient().get_model_version_by_alias(name, "champion").version == "1"


def test_unreachable_mlflow_names_the_uri_and_the_fix(project):
    port = free_port()
    nowhere = Settings(root=project, mlflow_port=port, _env_file=None)
    with pytest.raises(MlflowUnavailable, match=rf"127.0.0.1:{port}.*make stack-up"):
        setup_mlflow(nowhere)
    done = subprocess.run(
        [sys.executable, "-m", "app.training", "--family", "baseline"],
        env=os.environ | {"WORKBOOK_ROOT": str(project), "WORKBOOK_MLFLOW_PORT": str(port)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "make stack-up" in done.stderr and "Traceback" not in done.stderr
