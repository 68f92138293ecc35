"""Why did the model say 8? Per-pixel explanations that need nothing but predictions.

Shapley values by sampling pixel orders (what SHAP's PermutationExplainer does): start from a
blank image, put the digit's pixels back one at a time in a random order, and credit each pixel
with how much the predicted digit's probability moved when it came back; average over orders,
each one with its reverse (antithetic pairs: less noise for the same work). Each order's credits
add up to p(digit | image) - p(digit | blank) exactly, so every map does too: the promise checked
by `completeness_gap`. It needs only `predict_proba`, so the API computes it with whatever serves
the model (ONNX Runtime has no gradients); training, which has torch, also logs the CNN's
integrated gradients (app/training/explanations.py). Blank pixels get 0: putting back a pixel
that was already blank changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Predict = Callable[[np.ndarray], np.ndarray]  # n x 64 pixels -> n x 10 probabilities
METHOD = "shapley_sampling"
BASELINE = "blank"  # the image the credits are measured from: no ink anywhere
ORDERS = 16  # pixel orders a map averages (8 and their reverses)
MASKED = 8  # pixels the masking check blanks (an eighth of the image)


@dataclass(frozen=True)
class Explanation:
    """One digit's map: each pixel's share of the target's probability above a blank image."""

    target: int
    pixels: np.ndarray  # 64 credits, row by row like the input
    probability: float  # p(target | image)
    baseline_probability: float  # p(target | blank)
    method: str = METHOD

    def as_json(self) -> dict:
        """The API's `explanation` object."""
        return {
            "method": self.method,
            "baseline": BASELINE,
            "target": self.target,
            "pixels": np.round(self.pixels.astype(np.float64), 6).tolist(),
            "probability": round(self.probability, 6),
            "baseline_probability": round(self.baseline_probability, 6),
        }


def shapley_values(
    predict: Predict, features: np.ndarray, targets: np.ndarray, orders: int = ORDERS, seed: int = 0
) -> list[Explanation]:
    """Sampled Shapley values of `targets[i]`'s probability for each row of `features`, one
    model call a row (its inked pixels x `orders` images). The same input and seed give the same
    map: the orders come from `seed`, not from the clock."""
    if orders < 2 or orders % 2:
        raise ValueError(f"orders must be an even number >= 2 (antithetic pairs), not {orders}")
    rng = np.random.default_rng(seed)
    blank = np.zeros((1, features.shape[1]), dtype=np.float32)
    baseline = predict(blank)[0]
    explained = []
    for row, target in zip(np.asarray(features, dtype=np.float32), targets, strict=True):
        inked = np.flatnonzero(row)
        credits = np.zeros(row.shape, dtype=np.float64)
        full = float(baseline[target])  # a blank row is its own baseline
        if len(inked):
            shuffled = [rng.permutation(inked) for _ in range(orders // 2)]
            sequences = np.stack([o for order in shuffled for o in (order, order[::-1])])
            # When each pixel comes back in each order; image (k, j) holds the first j + 1.
            position = np.full((orders, row.size), len(inked))
            position[np.arange(orders)[:, None], sequences] = np.arange(len(inked))
            shown = position[:, None, :] <= np.arange(len(inked))[None, :, None]
            images = np.where(shown, row, np.float32(0)).reshape(-1, row.size)
            probability = predict(images)[:, target].astype(np.float64).reshape(orders, -1)
            before = np.concatenate(
                [np.full((orders, 1), baseline[target], dtype=np.float64), probability[:, :-1]],
                axis=1,
            )
            for order, gains in zip(sequences, probability - before, strict=True):
                credits[order] += gains
            credits /= orders
            full = float(probability[0, -1])  # the last image of an order is the whole row
        explained.append(Explanation(int(target), credits, full, float(baseline[target])))
    return explained


def completeness_gap(explanation: Explanation) -> float:
    """How far the map's sum is from what it promises: p(target | image) - p(target | blank)."""
    promised = explanation.probability - explanation.baseline_probability
    return abs(float(explanation.pixels.sum()) - promised)


@dataclass(frozen=True)
class MaskingCheck:
    """What blanking a map's top pixels does to the answers, against blanking as many at random."""

    rows: int
    masked: int
    top_changed: float  # share of answers that changed when each map's top pixels were blanked
    random_changed: float  # the same, blanking random pixels
    top_drop: float  # mean fall of the target's probability, top pixels blanked
    random_drop: float

    def as_metrics(self, prefix: str) -> dict[str, float]:
        return {
            f"{prefix}_top{self.masked}_changed": self.top_changed,
            f"{prefix}_random{self.masked}_changed": self.random_changed,
            f"{prefix}_top{self.masked}_drop": self.top_drop,
            f"{prefix}_random{self.masked}_drop": self.random_drop,
        }


def masking_check(
    predict: Predict,
    features: np.ndarray,
    maps: np.ndarray,
    masked: int = MASKED,
    seed: int = 0,
) -> MaskingCheck:
    """Blank each row's `masked` highest-credit pixels, then `masked` random ones, and compare
    how often the predicted digit changes and how far its probability falls."""
    features = np.asarray(features, dtype=np.float32)
    probabilities = predict(features)
    digits = probabilities.argmax(axis=1)
    rows = np.arange(len(features))[:, None]
    top = np.argsort(-maps, axis=1, kind="stable")[:, :masked]
    rng = np.random.default_rng(seed)
    chosen = np.stack([rng.choice(features.shape[1], masked, replace=False) for _ in features])

    def blanked(pixels: np.ndarray) -> tuple[float, float]:
        images = features.copy()
        images[rows, pixels] = 0
        after = predict(images)
        changed = float((after.argmax(axis=1) != digits).mean())
        drop = float((probabilities[rows[:, 0], digits] - after[rows[:, 0], digits]).mean())
        return changed, drop

    (top_changed, top_drop), (random_changed, random_drop) = blanked(top), blanked(chosen)
    return MaskingCheck(len(features), masked, top_changed, random_changed, top_drop, random_drop)
