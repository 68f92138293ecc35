"""The API with a part of every request taken out: what `make bench-parts` measures it against.

uvicorn serves this `create_app` as it serves the API's own, after taking out what
`BENCH_WITHOUT` names (comma-separated):
- `model`: the classifier answers rows it has seen with its earlier answer, computed once
  (wrk sends the same digit every time): the request does everything but run the model.
- `log`: the request's log line is not written (its logger is disabled).
A measurement only, never the product: what the API makes without a part is what the part costs.
"""

from __future__ import annotations

import os

import numpy as np
from fastapi import FastAPI

from app.serving import app as serving
from app.serving.telemetry import access_log
from app.training.onnx_model import OnnxClassifier

PARTS = ("model", "log")


def without_model() -> None:
    """Every ONNX classifier remembers its answer to each input it has computed."""
    compute = OnnxClassifier.predict_proba
    answers: dict[bytes, np.ndarray] = {}

    def remembered(self: OnnxClassifier, features: np.ndarray) -> np.ndarray:
        key = np.ascontiguousarray(features, dtype=np.float32).tobytes()
        if key not in answers:
            answers[key] = compute(self, features)
        return answers[key].copy()

    OnnxClassifier.predict_proba = remembered  # type: ignore[method-assign]


def create_app() -> FastAPI:
    parts = [part for part in os.environ.get("BENCH_WITHOUT", "").split(",") if part]
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise SystemExit(f"BENCH_WITHOUT names {sorted(unknown)}: the parts are {PARTS}")
    if "model" in parts:
        without_model()
    app = serving.create_app()
    if "log" in parts:
        access_log.disabled = True
    return app
