"""A classifier as an ONNX graph: what the API serves it with, through ONNX Runtime.

The whole classifier is one graph (64 pixels on the 0..16 scale in, 10 probabilities out: the
CNN's scaling and softmax, the baseline's standardising, inside), so serving needs onnxruntime
and numpy, never torch or scikit-learn. Every model is exported when it is logged, by the
library the field uses for its family (torch.onnx, skl2onnx), and checked equal to the original
on the val split, or the run fails.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np

from app.data.images import MAX_VALUE, SIDE

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from app.training.cnn import TorchClassifier
    from app.training.models import Classifier

ONNX_FILE = "model.onnx"
INPUT, OUTPUT = "pixels", "probabilities"
# Float32 arithmetic done in another order (fused kernels; the baseline in float32, not 64)
# moves the last digits: 1e-5 of a probability is far below what changes a digit, and about
# 20x what the two differ by on the val split (measured: 4e-7 for both families).
TOLERANCE = 1e-5


class ExportMismatch(RuntimeError):
    """The exported graph does not compute what the model does."""


class OnnxClassifier:
    """An exported model behind the same `predict_proba` as the others."""

    def __init__(self, path: Path, threads: int = 1):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # One digit is a few microseconds of arithmetic: a thread pool costs more than it saves.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        self.session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities, n x 10, for n x 64 pixel rows."""
        pixels = np.ascontiguousarray(features, dtype=np.float32).reshape(-1, SIDE * SIDE)
        return self.session.run([OUTPUT], {INPUT: pixels})[0]


def export_onnx(classifier: Classifier, family: str, path: Path) -> Path:
    """Write the classifier as an ONNX graph of any batch size: `pixels` in, `probabilities`
    out."""
    if family == "baseline":
        from skl2onnx import to_onnx
        from skl2onnx.common.data_types import FloatTensorType

        graph = to_onnx(
            cast("Pipeline", classifier),
            initial_types=[(INPUT, FloatTensorType([None, SIDE * SIDE]))],
            options={"zipmap": False},  # probabilities as a tensor, not a list of dicts
            target_opset={"": 17, "ai.onnx.ml": 3},
        )
        path.write_bytes(graph.SerializeToString())
        return path
    return _export_cnn(cast("TorchClassifier", classifier), path)


def _export_cnn(classifier: TorchClassifier, path: Path) -> Path:
    import torch

    class WholeClassifier(torch.nn.Module):
        """Pixels in, probabilities out: what `TorchClassifier.predict_proba` computes."""

        def __init__(self, network: torch.nn.Module):
            super().__init__()
            self.network = network

        def forward(self, pixels: torch.Tensor) -> torch.Tensor:
            images = pixels.reshape(-1, 1, SIDE, SIDE) / MAX_VALUE
            return torch.softmax(self.network(images), dim=1)

    example = torch.zeros(2, SIDE * SIDE)
    with warnings.catch_warnings():
        # torch 2.13 marks the TorchScript exporter deprecated for the dynamo one, which takes
        # 2 to 8 s a model (this one 0.05 s), writes to stderr, and needs onnxscript besides.
        warnings.simplefilter("ignore", DeprecationWarning)
        # In eval mode, wrapper included: the exporter puts each module back in the mode it
        # found it in, and a wrapper in training mode would leave the CNN's dropout switched on.
        torch.onnx.export(
            WholeClassifier(classifier.network).eval(),
            (example,),
            str(path),
            dynamo=False,
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_axes={INPUT: {0: "rows"}, OUTPUT: {0: "rows"}},
        )
    return path


def check_equal(classifier: Classifier, path: Path, features: np.ndarray) -> float:
    """The largest difference between the model's and its export's probabilities on
    `features`; raises ExportMismatch beyond TOLERANCE."""
    expected = classifier.predict_proba(features)
    exported = OnnxClassifier(path).predict_proba(features)
    difference = float(np.abs(expected - exported).max())
    if not difference <= TOLERANCE:  # a NaN fails too
        raise ExportMismatch(
            f"the ONNX export differs from the model by {difference:.2e} on "
            f"{len(features)} val rows (tolerance {TOLERANCE:.0e}): not logged"
        )
    return difference
