"""The two model families behind one interface, saved and loaded, and the MLflow wrapper.

Light to import: torch (cnn.py) and skops load only for the family a model belongs to, so an
API serving a baseline never imports torch, and no importer loads the training code (fit.py).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from app.config import CnnParams
from app.data.images import SIDE

if TYPE_CHECKING:  # names for the type checker only: importing them loads torch, sklearn
    from sklearn.pipeline import Pipeline

    from app.training.cnn import TorchClassifier

CLASSES = list(range(10))
OUTPUT_COLUMNS = ["digit", *[f"p_{digit}" for digit in CLASSES]]
DRIFT_REFERENCE = "drift_reference"  # the model's artifact the API judges input drift by
ONNX = "onnx"  # the model exported to ONNX (app/training/onnx_model.py)
# How a model computes, chosen when it is loaded (`model_config={"runtime": ...}`): "auto" is
# ONNX Runtime where the model has an ONNX export (models logged before exports had none),
# else the family's own library, as "native" always is.
RUNTIMES = ("auto", "onnxruntime", "native")


class Classifier(Protocol):
    """What both families offer once trained: class probabilities for n x 64 pixel rows."""

    def predict_proba(self, features: np.ndarray) -> np.ndarray: ...


def fingerprint(classifier: Classifier, *extras: bytes) -> str:
    """A sha256 of the numbers a model learned, and of `extras` logged with it (the drift
    reference): two runs that logged the same model share it.

    (The saved files cannot serve: skops' archive differs from one save to the next.)
    """
    from app.training.cnn import TorchClassifier  # training time: torch is loaded already

    if isinstance(classifier, TorchClassifier):
        arrays = [tensor.numpy() for tensor in classifier.network.state_dict().values()]
    else:  # the baseline's pipeline: the scaler's and the regression's fitted numbers
        pipeline = cast("Pipeline", classifier)
        scaler, regression = pipeline[0], pipeline[-1]
        arrays = [scaler.mean_, scaler.scale_, regression.coef_, regression.intercept_]
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    for extra in extras:
        digest.update(extra)
    return digest.hexdigest()


def save_classifier(classifier: Classifier, family: str, folder: Path) -> tuple[Path, dict]:
    """Write a trained classifier without pickling code: skops for scikit-learn, a state dict
    for torch. Returns the file and the config needed to load it back."""
    if family == "baseline":
        import skops.io

        path = folder / "baseline.skops"
        skops.io.dump(classifier, path)
        return path, {"family": family}
    import torch

    path = folder / "cnn.pt"
    network = cast("TorchClassifier", classifier).network
    torch.save(network.state_dict(), path)
    return path, {"family": family, "cnn": network.params.model_dump()}


def load_classifier(path: Path, config: dict) -> Classifier:
    """Load what `save_classifier` wrote."""
    if config["family"] == "baseline":
        import skops.io

        return skops.io.load(path)  # only skops' default-trusted scikit-learn types load
    try:
        import torch
    except ImportError:
        raise RuntimeError(
            "this CNN has no ONNX export and torch is not installed here (the API image leaves "
            "it out): retrain it with this version of the workbook, which exports every CNN"
        ) from None

    from app.training.cnn import DigitsCNN, TorchClassifier

    network = DigitsCNN(CnnParams.model_validate(config["cnn"]))
    network.load_state_dict(torch.load(path, weights_only=True, map_location="cpu"))
    return TorchClassifier(network)


class DigitsModel(PythonModel):
    """The logged model (MLflow 'models from code', see model_code.py): any family in, one
    output out: the digit and its 10 probabilities."""

    def load_context(self, context) -> None:
        """Load the classifier (through ONNX Runtime when the model has an ONNX export, unless
        the loader asks for `runtime: native`: PyTorch or scikit-learn) and find the drift
        reference MLflow downloaded."""
        config = context.model_config
        self.family = config["family"]
        runtime = config.get("runtime", "auto")
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime {runtime!r} is none of {', '.join(RUNTIMES)}")
        exported = context.artifacts.get(ONNX)
        if runtime == "onnxruntime" and not exported:
            raise ValueError(
                f"runtime onnxruntime asked for, but this {self.family} was logged without an "
                "ONNX export (before the workbook exported every model): retrain it"
            )
        if exported and runtime != "native":
            from app.training.onnx_model import OnnxClassifier

            threads = config.get("runtime_threads", 1)
            self.classifier: Classifier = OnnxClassifier(Path(exported), threads)
            self.runtime = "onnxruntime"
        else:
            self.classifier = load_classifier(Path(context.artifacts["weights"]), config)
            self.runtime = "pytorch" if self.family == "cnn" else "scikit-learn"
        # Where the drift reference was downloaded (None for models logged before it existed).
        self.drift_reference = context.artifacts.get(DRIFT_REFERENCE)

    # The signature logged with the model (a 64-wide float tensor) does the checking.
    def predict(self, context, model_input: np.ndarray, params=None) -> pd.DataFrame:
        """The digit and the ten probabilities of each row."""
        features = np.asarray(model_input, dtype=np.float32).reshape(-1, SIDE * SIDE)
        return probabilities_frame(self.classifier.predict_proba(features))


def probabilities_frame(probabilities: np.ndarray) -> pd.DataFrame:
    """The model's output: `digit` (the most likely class) and `p_0` ... `p_9`."""
    frame = pd.DataFrame(probabilities, columns=OUTPUT_COLUMNS[1:])
    frame.insert(0, "digit", probabilities.argmax(axis=1))
    return frame
