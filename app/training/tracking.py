"""Log a training run to MLflow: params, curves, metrics, plots, the model and its lineage."""

from __future__ import annotations

import logging
import subprocess
import tempfile
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import mlflow
import numpy as np
from mlflow.environment_variables import MLFLOW_HTTP_REQUEST_MAX_RETRIES
from mlflow.models import ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.types import ColSpec, Schema, TensorSpec

from app.config import Params, Settings, TrainParams
from app.data.dvc import read_pin
from app.data.images import SIDE, load_split
from app.data.validate import check
from app.log import quiet_mlflow
from app.monitoring.drift import REFERENCE_FILE, DriftReference, build_reference
from app.registry import FINGERPRINT
from app.training.explanations import log_explanations
from app.training.fit import Evaluation, TrainResult, evaluate, for_data_version, train
from app.training.models import DRIFT_REFERENCE, ONNX, fingerprint, save_classifier
from app.training.onnx_model import ONNX_FILE, check_equal, export_onnx

if TYPE_CHECKING:  # matplotlib is imported where figures are drawn (not in the API image)
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)
MODEL_NAME_IN_RUN = "model"
MODEL_CODE = Path(__file__).with_name("model_code.py")  # logged with, and run by, every model
# What a model needs to load elsewhere: the versions installed here (pinned in pyproject.toml);
# the MLflow client suffices (the API image has no more).
PACKAGES = ("mlflow-skinny", "torch", "onnxruntime", "scikit-learn", "skops", "numpy", "pandas")
PIP_REQUIREMENTS = [f"{package}=={version(package)}" for package in PACKAGES]


class MlflowUnavailable(RuntimeError):
    """The tracking server does not answer; the message says where and how to start it."""


def setup_mlflow(settings: Settings, experiment: str | None = None) -> str:
    """Point MLflow at the tracking server and fail fast, clearly, if it does not answer; make
    `experiment` (default: the settings') the active one.

    A `sqlite:///...` tracking URI is a registry without a server (the fast tests use one): its
    experiments keep their artifacts in `artifacts/` beside the database, never in `./mlruns`.
    """
    experiment = experiment or settings.experiment_name
    uri = settings.mlflow_uri
    if uri.startswith(("http://", "https://")):
        try:
            httpx.get(f"{uri}/health", timeout=3).raise_for_status()
        except httpx.HTTPError as error:
            raise MlflowUnavailable(
                f"MLflow is not reachable at {uri} ({type(error).__name__}). "
                "Start the local stack with `make stack-up`, or set WORKBOOK_MLFLOW_TRACKING_URI."
            ) from None
    mlflow.set_tracking_uri(uri)
    quiet_mlflow()
    if not MLFLOW_HTTP_REQUEST_MAX_RETRIES.is_set():  # a server that went away fails in seconds
        MLFLOW_HTTP_REQUEST_MAX_RETRIES.set(2)
    if uri.startswith("sqlite:///") and not mlflow.get_experiment_by_name(experiment):
        artifacts = Path(uri.removeprefix("sqlite:///")).parent / "artifacts"
        mlflow.create_experiment(experiment, artifact_location=artifacts.as_uri())
    mlflow.set_experiment(experiment)
    return uri


def git_commit(repo: Path) -> str:
    """The commit the code runs from, with '-dirty' when the tree has uncommitted changes."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "HEAD") or "unknown"
    return f"{commit}-dirty" if git("status", "--porcelain", "--untracked-files=no") else commit


def lineage_tags(settings: Settings, n_train: int, n_val: int) -> dict[str, str]:
    """Tags that tie a run to its inputs: the data version, its md5, the code commit."""
    pin = read_pin(settings.dvc_file)
    return {
        "data_version": pin.version,
        "data_md5": pin.md5,
        "git_commit": git_commit(settings.root),
        "train_size": str(n_train),
        "val_size": str(n_val),
    }


def confusion_figure(evaluation: Evaluation, title: str) -> Figure:
    """The confusion matrix with counts in every cell."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 4.5))
    ax = fig.subplots()
    ax.imshow(evaluation.confusion, cmap="Blues")
    for (row, col), count in np.ndenumerate(evaluation.confusion):
        colour = "white" if count > evaluation.confusion.max() / 2 else "black"
        ax.text(col, row, str(count), ha="center", va="center", fontsize=8, color=colour)
    ax.set(xticks=range(10), yticks=range(10), xlabel="predicted", ylabel="true", title=title)
    return fig


def misclassified_figure(evaluation: Evaluation, features, labels, limit: int = 24) -> Figure:
    """The val images the model got wrong, titled 'true → predicted (confidence)'."""
    wrong = np.flatnonzero(evaluation.predictions != labels)[:limit]
    columns = max(1, min(8, len(wrong)))
    rows = max(1, -(-len(wrong) // columns))
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(3, columns * 1.1), rows * 1.3 + 0.4))
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    for ax in axes:
        ax.set_axis_off()
    for ax, row in zip(axes, wrong, strict=False):
        ax.imshow(features[row].reshape(SIDE, SIDE), cmap="gray_r", vmin=0, vmax=16)
        confidence = evaluation.probabilities[row].max()
        ax.set_title(
            f"{labels[row]} → {evaluation.predictions[row]} ({confidence:.0%})", fontsize=8
        )
    fig.suptitle(f"{len(wrong)} misclassified (of {int((evaluation.predictions != labels).sum())})")
    return fig


SIGNATURE = ModelSignature(
    inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, SIDE * SIDE))]),
    outputs=Schema(
        [ColSpec("long", "digit"), *[ColSpec("double", f"p_{digit}") for digit in range(10)]]
    ),
)


def log_model(result: TrainResult, val_rows: np.ndarray, reference: DriftReference) -> ModelInfo:
    """Log the classifier as an MLflow model from code; its weights, drift reference and ONNX
    export go with it as artifacts (the API loads them together). The export must compute what
    the model does on the val split, or nothing is logged."""
    with tempfile.TemporaryDirectory() as folder:
        weights, config = save_classifier(result.classifier, result.family, Path(folder))
        reference_file = reference.save(Path(folder) / REFERENCE_FILE)
        artifacts = {"weights": str(weights), DRIFT_REFERENCE: str(reference_file)}
        exported = export_onnx(result.classifier, result.family, Path(folder) / ONNX_FILE)
        difference = check_equal(result.classifier, exported, val_rows)
        mlflow.log_metric("onnx_max_difference", difference)
        artifacts[ONNX] = str(exported)
        return mlflow.pyfunc.log_model(
            name=MODEL_NAME_IN_RUN,
            python_model=MODEL_CODE,
            artifacts=artifacts,
            # The keys a loader may override (`model_config=` of load_model): MLflow lets it
            # change only those the model was logged with. (MLflow logs them as the run's
            # params too: no key may share a training param's name.)
            model_config=config | {"runtime": "auto", "runtime_threads": 1},
            signature=SIGNATURE,
            input_example=val_rows[:3],
            pip_requirements=PIP_REQUIREMENTS,
        )


@dataclass(frozen=True)
class LoggedRun:
    """A finished training run: its id, its logged model's URI, and what it trained."""

    run_id: str
    family: str
    model_uri: str
    metrics: dict[str, float]
    seconds: float


def param_section(family: str) -> str:
    """The section of `train:` in params.yaml that holds a family's params."""
    return "baseline" if family == "baseline" else "cnn"


def family_params(
    params: Params, family: str, data_version: str | None = None
) -> dict[str, object]:
    """The params that shaped one family's run on `data_version`, flat, as MLflow shows them
    (the CNN's `augment` is None on the versions it does not augment)."""
    own = getattr(for_data_version(params.train, data_version), param_section(family))
    return {"family": family, "seed": params.train.seed, "threads": params.train.threads} | {
        key: str(value) if isinstance(value, tuple) else value
        for key, value in own.model_dump().items()
    }


def with_overrides(params: Params, family: str, overrides: dict) -> Params:
    """A copy of params with some of one family's values replaced, and validated again."""
    train = params.train.model_dump()
    train[param_section(family)] |= overrides
    return params.model_copy(update={"train": TrainParams.model_validate(train)})


def train_and_log(
    settings: Settings,
    params: Params,
    family: str,
    overrides: dict | None = None,
    label: str | None = None,
) -> LoggedRun:
    """Validate the data, train one family, log everything to MLflow; return the run.

    An exception inside the run marks it FAILED in MLflow and propagates: nothing is registered.
    `overrides` patch the family's params (the notebooks use it to make a deliberately weak
    model); `label` goes into the run name (`baseline-weak-v1`), so the UI tells such runs apart.
    """
    check(settings.data_dir, params.validation)
    if overrides:
        params = with_overrides(params, family, overrides)
    train_data = load_split(settings.data_dir / "train")
    val_data = load_split(settings.data_dir / "val")
    tags = lineage_tags(settings, len(train_data[1]), len(val_data[1]))
    run_name = "-".join(part for part in (family, label, tags["data_version"]) if part)
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.set_tags(tags)
        mlflow.log_params(family_params(params, family, tags["data_version"]))

        def log_epoch(epoch: int, metrics: dict[str, float]) -> None:
            mlflow.log_metrics(metrics, step=epoch)

        result: TrainResult = train(
            family,
            params.train,
            train_data,
            val_data,
            on_epoch=log_epoch,
            data_version=tags["data_version"],
        )
        evaluation = evaluate(result.classifier, *val_data)
        metrics = evaluation.as_metrics() | {"train_seconds": result.seconds}
        # val_accuracy is already the last point of its per-epoch curve: log only what is new.
        mlflow.log_metrics({k: v for k, v in metrics.items() if k not in result.history[-1]})
        title = f"{run_name}: accuracy {evaluation.accuracy:.3f}"
        mlflow.log_figure(confusion_figure(evaluation, title), "plots/confusion_matrix.png")
        mlflow.log_figure(misclassified_figure(evaluation, *val_data), "plots/misclassified.png")
        log_explanations(result, val_data, params.data.shift, title)
        reference = build_reference(params.monitoring, train_data[0], evaluation.probabilities)
        info = log_model(result, val_data[0], reference)
        learned = fingerprint(result.classifier, reference.model_dump_json().encode())
        mlflow.set_tags({"model_uri": info.model_uri, FINGERPRINT: learned})
    log.info(
        "%s: val accuracy %.4f in %.1f s (run %s)",
        run_name,
        evaluation.accuracy,
        result.seconds,
        run.info.run_id,
    )
    return LoggedRun(run.info.run_id, family, info.model_uri, metrics, result.seconds)
