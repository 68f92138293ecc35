"""Input drift: is what users send still like what the model was trained on?

The method, in three steps:
1. **Reference** (at training time, `build_reference`): for each of the 64 pixels, the share of
   training images whose value falls in each of a few bins (blank, faint, ..., full ink), and
   the same for the total ink of an image (bins at the training deciles). Also what the model
   predicts on the val split: the share of each digit and the mean confidence. It is logged
   with the model, as a JSON artifact, and the API loads it with the model.
2. **Window** (in the API, `DriftWindow`): the last `window` inputs the model answered, with
   its predictions. A request only copies its rows into a ring buffer: nothing is computed on
   the request path.
3. **Scores** (on each Prometheus scrape, `DriftMonitor.scores`): the same histograms for
   the window, compared with the reference by the Jensen-Shannon distance (scipy; 0 = the
   same distribution, 1 = nothing in common). The input drift score is its mean over the 65
   features (64 pixels + ink); the prediction shift is the distance between the window's and
   the val split's predicted-digit shares.

A small window is noisy even without drift: windows drawn from the val split score about 0.10
with 50 inputs and 0.06 with 200, the shifted batch of `params.yaml` about 0.42. The default
threshold (0.2) sits between the two; below `min_inputs` no score is given (NaN).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel
from scipy.spatial.distance import jensenshannon

from app.config import MonitoringParams
from app.data.images import SIDE

N_PIXELS = SIDE * SIDE
REFERENCE_FILE = "drift_reference.json"


class DriftReference(BaseModel):
    """What the model's training inputs and val predictions looked like (one JSON artifact)."""

    params: MonitoringParams
    train_size: int
    val_size: int
    pixel_shares: list[list[float]]  # 64 pixels x bins: share of training images per bin
    pixel_means: list[float]  # 64 values: the average training image
    ink_edges: list[float]  # inner bin edges of total ink: the training deciles
    ink_shares: list[float]
    digit_shares: list[float]  # share of each predicted digit on the val split
    confidence_mean: float  # mean probability of the predicted digit on the val split

    def save(self, path: Path) -> Path:
        """Write the reference as JSON."""
        path.write_text(self.model_dump_json(indent=1))
        return path

    @classmethod
    def load(cls, path: Path) -> DriftReference:
        """Read a reference `save` wrote."""
        return cls.model_validate_json(path.read_text())


def pixel_shares(features: np.ndarray, inner_edges: list[float]) -> np.ndarray:
    """64 x bins: for each pixel, the share of images whose value falls in each bin."""
    n_bins = len(inner_edges) + 1
    bins = np.digitize(features, inner_edges)
    offsets = np.arange(features.shape[1]) * n_bins
    counts = np.bincount((bins + offsets).ravel(), minlength=features.shape[1] * n_bins)
    return counts.reshape(features.shape[1], n_bins) / len(features)


def shares(values: np.ndarray, inner_edges: list[float] | np.ndarray) -> np.ndarray:
    """The share of values in each bin between consecutive inner edges (open at both ends)."""
    counts = np.bincount(np.digitize(values, inner_edges), minlength=len(inner_edges) + 1)
    return counts / len(values)


def digit_shares(digits: np.ndarray) -> np.ndarray:
    """The share of each digit among `digits` (all ten, summing to 1)."""
    return np.bincount(digits, minlength=10) / len(digits)


def build_reference(
    params: MonitoringParams,
    train_features: np.ndarray,
    val_probabilities: np.ndarray,
) -> DriftReference:
    """The reference of one model: its training inputs, and its answers on the val split."""
    ink = train_features.sum(axis=1)
    ink_edges = np.quantile(ink, np.linspace(0, 1, 11)[1:-1])
    return DriftReference(
        params=params,
        train_size=len(train_features),
        val_size=len(val_probabilities),
        pixel_shares=pixel_shares(train_features, params.pixel_bins).round(6).tolist(),
        pixel_means=train_features.mean(axis=0).round(4).tolist(),
        ink_edges=ink_edges.round(4).tolist(),
        ink_shares=shares(ink, ink_edges).round(6).tolist(),
        digit_shares=digit_shares(val_probabilities.argmax(axis=1)).round(6).tolist(),
        confidence_mean=round(float(val_probabilities.max(axis=1).mean()), 6),
    )


@dataclass(frozen=True)
class Scores:
    """What the API reports about its window: size, input drift, prediction shift, confidence."""

    inputs: int  # how many inputs the window holds
    input_drift: float  # NaN below min_inputs
    prediction_shift: float
    mean_confidence: float


def distances(reference: DriftReference, features: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance to the reference of each pixel's histogram (64), then the ink's."""
    pixels = jensenshannon(
        np.asarray(reference.pixel_shares),
        pixel_shares(features, reference.params.pixel_bins),
        axis=1,
        base=2,
    )
    ink = jensenshannon(
        reference.ink_shares, shares(features.sum(axis=1), reference.ink_edges), base=2
    )
    # Two identical histograms can come out as sqrt(-1e-17) = NaN after rounding: distance 0.
    return np.nan_to_num(np.append(pixels, ink), nan=0.0)


def input_drift(reference: DriftReference, features: np.ndarray) -> float:
    """The input drift score: the mean of `distances` over the 65 features."""
    return float(distances(reference, features).mean())


class DriftWindow:
    """The last `size` inputs with the predicted digit and its probability: a ring buffer.

    `add` is all a request does (a copy of its rows, under a lock); `snapshot` copies the
    filled part out for scoring, on whatever thread scrapes.
    """

    def __init__(self, size: int):
        self.size = size
        self._features = np.zeros((size, N_PIXELS), dtype=np.float32)
        self._digits = np.zeros(size, dtype=np.int64)
        self._confidences = np.zeros(size, dtype=np.float32)
        self._next = 0  # where the next row goes
        self._count = 0
        self._lock = threading.Lock()

    def add(self, features: np.ndarray, digits: np.ndarray, confidences: np.ndarray) -> None:
        """Append rows; with more rows than the window holds, only the last `size` count."""
        features, digits, confidences = (
            features[-self.size :],
            digits[-self.size :],
            confidences[-self.size :],
        )
        n = len(digits)
        with self._lock:
            start = self._next
            # Rows that fit before the end go in as one slice (a request's usual case); rows
            # that wrap around, slot by slot.
            slots = (
                slice(start, start + n)
                if start + n <= self.size
                else ((start + np.arange(n)) % self.size)
            )
            self._features[slots] = features
            self._digits[slots] = digits
            self._confidences[slots] = confidences
            self._next = (start + n) % self.size
            self._count = min(self.size, self._count + n)

    def snapshot(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with self._lock:
            n = self._count
            return self._features[:n].copy(), self._digits[:n].copy(), self._confidences[:n].copy()


class DriftMonitor:
    """One model's reference and the window of what it answered since it was loaded."""

    def __init__(self, reference: DriftReference):
        self.reference = reference
        self.window = DriftWindow(reference.params.window)

    def scores(self) -> Scores:
        features, digits, confidences = self.window.snapshot()
        if len(digits) < self.reference.params.min_inputs:
            return Scores(len(digits), math.nan, math.nan, math.nan)
        shift = jensenshannon(self.reference.digit_shares, digit_shares(digits), base=2)
        return Scores(
            inputs=len(digits),
            input_drift=input_drift(self.reference, features),
            prediction_shift=float(shift),
            mean_confidence=float(confidences.mean()),
        )
