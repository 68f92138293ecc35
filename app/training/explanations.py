"""What a training run logs about why its model answers as it does (`explanations/` in the run).

The CNN: integrated gradients, a few lines of autograd. Walk from a blank image to the digit in
`STEPS` steps, take the gradient of the predicted digit's probability at each, and credit each
pixel with its ink times the mean gradient: the credits add up to p(digit | image) -
p(digit | blank), up to the walk's discretisation (`completeness_gap` measures it). The baseline:
its coefficients per class (what a linear model reads in each pixel) and sampled Shapley values
(app/explain.py), the method the API serves for every model.

Both are shown for right and wrong val digits and for shifted ones, and checked on the whole val
split: blanking each map's top pixels must change the answers more than blanking random ones.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, cast

import mlflow
import numpy as np

from app.data.build import shift_images
from app.data.images import MAX_VALUE, SIDE
from app.explain import Explanation, MaskingCheck, completeness_gap, masking_check, shapley_values

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from sklearn.pipeline import Pipeline

    from app.config import ShiftParams
    from app.training.cnn import TorchClassifier
    from app.training.fit import TrainResult

STEPS = 64  # points on the walk from blank to the digit; the gap falls as they grow
FOLDER = "explanations"
SHOWN = {"right": 4, "wrong": 4, "shifted": 4}  # digits each figure shows, by kind
CHECKED = 120  # val digits the checks run on, the same ones every run (a third of v1's val)


def integrated_gradients(
    classifier: TorchClassifier, features: np.ndarray, targets: np.ndarray, steps: int = STEPS
) -> list[Explanation]:
    """Integrated gradients of `targets[i]`'s probability for each row, from a blank image
    (midpoint rule: the gradient at the middle of each of `steps` equal parts of the walk)."""
    import torch

    network = classifier.network.eval()
    pixels = torch.from_numpy(np.asarray(features, dtype=np.float32))
    target = torch.from_numpy(np.asarray(targets, dtype=np.int64))
    fractions = (torch.arange(steps, dtype=torch.float32) + 0.5) / steps
    walk = (fractions[None, :, None] * pixels[:, None, :]).reshape(-1, SIDE * SIDE)
    walk.requires_grad_(True)
    probabilities = torch.softmax(network(walk.reshape(-1, 1, SIDE, SIDE) / MAX_VALUE), dim=1)
    chosen = probabilities.gather(1, target.repeat_interleave(steps)[:, None]).sum()
    (gradients,) = torch.autograd.grad(chosen, walk)
    credits = pixels * gradients.reshape(len(pixels), steps, -1).mean(dim=1)
    with torch.inference_mode():
        ends = torch.cat([torch.zeros(1, SIDE * SIDE), pixels])
        end_probabilities = torch.softmax(network(ends.reshape(-1, 1, SIDE, SIDE) / MAX_VALUE), 1)
    blank, full = end_probabilities[0], end_probabilities[1:]
    return [
        Explanation(
            int(t), c.detach().numpy(), float(full[i, t]), float(blank[t]), "integrated_gradients"
        )
        for i, (t, c) in enumerate(zip(target.tolist(), credits, strict=True))
    ]


def explain(result: TrainResult, features: np.ndarray) -> tuple[str, list[Explanation]]:
    """The family's own method, and its map of each row's predicted digit."""
    method = "integrated_gradients" if result.family == "cnn" else "shapley_sampling"
    if not len(features):
        return method, []
    targets = result.classifier.predict_proba(features).argmax(axis=1)
    if result.family == "cnn":
        return method, integrated_gradients(
            cast("TorchClassifier", result.classifier), features, targets
        )
    return method, shapley_values(result.classifier.predict_proba, features, targets)


def shown_rows(
    predictions: np.ndarray, labels: np.ndarray, shown: dict[str, int] = SHOWN
) -> dict[str, np.ndarray]:
    """Which val digits the figure shows: the first right ones (one of each digit first) and the
    first wrong ones."""
    right = np.flatnonzero(predictions == labels)
    first_of_each = [right[labels[right] == digit][0] for digit in np.unique(labels[right])]
    return {
        "right": np.array(first_of_each[: shown["right"]], dtype=int),
        "wrong": np.flatnonzero(predictions != labels)[: shown["wrong"]],
    }


def maps_figure(
    method: str, panels: list[tuple[str, np.ndarray, Explanation, int]], title: str
) -> Figure:
    """Each digit beside its map: credit toward the predicted digit in red, against it in blue."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2 * len(panels), 4.4))
    axes = fig.subplots(2, len(panels), squeeze=False)
    for column, (kind, image, explanation, label) in enumerate(panels):
        top, bottom = axes[0, column], axes[1, column]
        top.imshow(image.reshape(SIDE, SIDE), cmap="gray_r", vmin=0, vmax=MAX_VALUE)
        top.set_title(f"{kind}: {label} → {explanation.target}", fontsize=9)
        limit = float(np.abs(explanation.pixels).max()) or 1.0
        credits = explanation.pixels.reshape(SIDE, SIDE)
        bottom.imshow(credits, cmap="RdBu_r", vmin=-limit, vmax=limit)
        bottom.set_title(f"sum {explanation.pixels.sum():+.3f}", fontsize=8)
        for ax in (top, bottom):
            ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle(f"{title}\n{method}: red pushed toward the answer, blue away from it", fontsize=10)
    return fig


def coefficients_figure(pipeline: Pipeline) -> Figure:
    """The baseline's weight of each pixel for each digit, on the pixels' own scale."""
    from matplotlib.figure import Figure

    scaler, model = pipeline.steps[0][1], pipeline.steps[-1][1]
    weights = model.coef_ / scaler.scale_  # standardising folded in: a weight per unit of ink
    limit = float(np.abs(weights).max())
    fig = Figure(figsize=(10, 2.6))
    for digit, ax in enumerate(fig.subplots(1, 10)):
        ax.imshow(weights[digit].reshape(SIDE, SIDE), cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(str(digit)), ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle("The baseline's coefficients: ink here raises (red) or lowers (blue) each digit")
    return fig


def log_explanations(
    result: TrainResult,
    val: tuple[np.ndarray, np.ndarray],
    shift: ShiftParams,
    title: str,
) -> MaskingCheck:
    """Explain `CHECKED` val digits with the family's method and check the maps (completeness,
    masking); draw right, wrong and shifted digits with theirs; log it all to the active run."""
    features, labels = val
    checked = np.sort(np.random.default_rng(0).permutation(len(labels))[:CHECKED])
    method, maps = explain(result, features[checked])
    pixels = np.stack([m.pixels for m in maps])
    check = masking_check(result.classifier.predict_proba, features[checked], pixels)
    gaps = [completeness_gap(m) for m in maps]

    predictions = result.classifier.predict_proba(features).argmax(axis=1)
    rows = shown_rows(predictions, labels)
    shifted_rows = rows["right"][: SHOWN["shifted"]]
    images = {
        "right": features[rows["right"]],
        "wrong": features[rows["wrong"]],
        "shifted": shift_images(features[shifted_rows], shift).astype(np.float32),
    }
    truths = {"right": rows["right"], "wrong": rows["wrong"], "shifted": shifted_rows}
    panels = [
        (kind, image, explanation, int(labels[row]))
        for kind, shown in images.items()
        for image, explanation, row in zip(
            shown, explain(result, shown)[1], truths[kind], strict=True
        )
    ]
    mlflow.log_figure(maps_figure(method, panels, title), f"{FOLDER}/maps.png")
    if result.family == "baseline":
        mlflow.log_figure(
            coefficients_figure(cast("Pipeline", result.classifier)), f"{FOLDER}/coefficients.png"
        )
    summary = {
        "method": method,
        "baseline": "blank",
        "val_rows": len(checked),
        "completeness_gap_max": max(gaps),
        "completeness_gap_mean": float(np.mean(gaps)),
        "masking": check.__dict__,
        "shown": {
            kind: [{"label": int(label), "explanation": m.as_json()} for _, _, m, label in group]
            for kind in ("right", "wrong", "shifted")
            if (group := [p for p in panels if p[0] == kind])
        },
    }
    mlflow.log_text(json.dumps(summary, indent=1), f"{FOLDER}/checks.json")
    mlflow.log_metrics(check.as_metrics("explain") | {"explain_completeness_gap": max(gaps)})
    return check
