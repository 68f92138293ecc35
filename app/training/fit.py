"""Train either family on (features, labels) arrays and evaluate it: no MLflow in here."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, f1_score, log_loss, recall_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from app.config import AugmentParams, BaselineParams, TrainParams
from app.data.build import base_version
from app.data.images import MAX_VALUE, SIDE
from app.training.cnn import DigitsCNN, TorchClassifier, to_tensor
from app.training.models import CLASSES, Classifier

FAMILIES = ("baseline", "cnn")
EpochCallback = Callable[[int, dict[str, float]], None]


def make_baseline(params: BaselineParams, seed: int) -> Pipeline:
    """Logistic regression on the 64 flattened, standardised pixels."""
    return make_pipeline(
        StandardScaler(),
        LogisticRegression(C=params.C, max_iter=params.max_iter, random_state=seed),
    )


@dataclass
class TrainResult:
    """A trained classifier, its history per epoch, and how long it took."""

    family: str
    classifier: Classifier
    history: list[dict[str, float]]  # one row of metrics per epoch
    seconds: float
    augmented: bool = False  # trained on augmented digits (see `for_data_version`)


@dataclass
class Evaluation:
    """A classifier's metrics on one split, with its confusion matrix and probabilities."""

    accuracy: float
    macro_f1: float
    recall: dict[int, float]
    confusion: np.ndarray
    predictions: np.ndarray
    probabilities: np.ndarray = field(repr=False)

    def as_metrics(self, prefix: str = "val_") -> dict[str, float]:
        """Flat metric names, as MLflow logs them."""
        metrics = {f"{prefix}accuracy": self.accuracy, f"{prefix}macro_f1": self.macro_f1}
        metrics.update({f"{prefix}recall_{digit}": value for digit, value in self.recall.items()})
        return metrics


def evaluate(classifier: Classifier, features: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Accuracy, macro-F1, per-class recall and the confusion matrix on one split."""
    probabilities = classifier.predict_proba(features)
    predictions = probabilities.argmax(axis=1)
    recalls = recall_score(labels, predictions, labels=CLASSES, average=None, zero_division=0)
    return Evaluation(
        accuracy=float((predictions == labels).mean()),
        macro_f1=float(f1_score(labels, predictions, labels=CLASSES, average="macro")),
        recall={digit: float(value) for digit, value in zip(CLASSES, recalls, strict=True)},
        confusion=confusion_matrix(labels, predictions, labels=CLASSES),
        predictions=predictions,
        probabilities=probabilities,
    )


def _split_metrics(classifier: Classifier, split: str, features, labels) -> dict[str, float]:
    probabilities = classifier.predict_proba(features)
    return {
        f"{split}_loss": float(log_loss(labels, probabilities, labels=CLASSES)),
        f"{split}_accuracy": float((probabilities.argmax(axis=1) == labels).mean()),
    }


def train_baseline(params: TrainParams, train, val, on_epoch: EpochCallback) -> Classifier:
    """Fit the logistic regression in one go: its 'history' is a single step."""
    model = make_baseline(params.baseline, params.seed).fit(*train)
    on_epoch(0, _split_metrics(model, "train", *train) | _split_metrics(model, "val", *val))
    return model


@contextmanager
def deterministic_torch(seed: int, threads: int) -> Iterator[None]:
    """Seeded, deterministic kernels on a fixed number of threads; restored afterwards."""
    was_deterministic, was_threads = (
        torch.are_deterministic_algorithms_enabled(),
        torch.get_num_threads(),
    )
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
        torch.set_num_threads(was_threads)


def augment(
    images: torch.Tensor, params: AugmentParams, generator: torch.Generator
) -> torch.Tensor:
    """Drift-like versions of some digits (n x 1 x 8 x 8, 0..1), the kind `shift_images` makes:
    a `probability` share of them turned, sometimes thickened, and noised; the rest as they are.

    Batched torch ops, so a whole epoch costs milliseconds; every draw comes from `generator`.
    """
    n = len(images)
    changed = torch.rand(n, generator=generator) < params.probability
    thicken = torch.rand(n, generator=generator) < params.thicken
    angles = torch.deg2rad((torch.rand(n, generator=generator) * 2 - 1) * params.rotate_degrees)
    cos, sin, zero = angles.cos(), angles.sin(), torch.zeros(n)
    # Rotation about the centre, bilinear, as ndimage.rotate(order=1, mode="constant") does it:
    # a pixel whose source falls outside the outer pixel centres is blank, not half-blended.
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = nn.functional.affine_grid(theta, list(images.shape), align_corners=False)
    out = nn.functional.grid_sample(images, grid, padding_mode="zeros", align_corners=False)
    inside = (grid.abs() <= 1 - 1 / SIDE + 1e-6).all(dim=-1).unsqueeze(1)
    out = out * inside
    # A 2x2 max over each pixel and its lower-right neighbours: ndimage.grey_dilation(2x2).
    thick = nn.functional.max_pool2d(nn.functional.pad(out, (0, 1, 0, 1)), 2, stride=1)
    out = torch.where(thicken.view(-1, 1, 1, 1), thick, out)
    noise = torch.randn(images.shape, generator=generator) * (params.noise_std / MAX_VALUE)
    out = (out + noise).clamp(0, 1)
    return torch.where(changed.view(-1, 1, 1, 1), out, images)


def train_cnn(params: TrainParams, train, val, on_epoch: EpochCallback) -> Classifier:
    """Mini-batch AdamW with a one-cycle learning rate; metrics after every epoch.

    On the CPU, always: the network is small enough to train in seconds on a laptop, and
    deterministic CUDA kernels would need set-up (CUBLAS_WORKSPACE_CONFIG) for no gain here.
    """
    cnn = params.cnn
    with deterministic_torch(params.seed, params.threads):
        network = DigitsCNN(cnn)
        images, labels = to_tensor(train[0]), torch.from_numpy(train[1])
        batches = (len(labels) + cnn.batch_size - 1) // cnn.batch_size
        optimizer = torch.optim.AdamW(
            network.parameters(), lr=cnn.learning_rate, weight_decay=cnn.weight_decay
        )
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=cnn.learning_rate, total_steps=cnn.epochs * batches
        )
        shuffler = torch.Generator().manual_seed(params.seed)
        # A generator of its own: the batches are the same with augmentation on or off.
        augmenter = torch.Generator().manual_seed(params.seed)
        for epoch in range(cnn.epochs):
            network.train()
            order = torch.randperm(len(labels), generator=shuffler)
            seen = augment(images, cnn.augment, augmenter) if cnn.augment else images
            loss_sum, correct = 0.0, 0
            for rows in order.split(cnn.batch_size):
                optimizer.zero_grad()
                logits = network(seen[rows])
                loss = nn.functional.cross_entropy(logits, labels[rows])
                loss.backward()
                optimizer.step()
                schedule.step()
                loss_sum += loss.item() * len(rows)
                correct += (logits.argmax(dim=1) == labels[rows]).sum().item()
            metrics = {
                "train_loss": loss_sum / len(labels),
                "train_accuracy": correct / len(labels),
            }
            on_epoch(epoch, metrics | _split_metrics(TorchClassifier(network), "val", *val))
    return TorchClassifier(network)


TRAINERS = {"baseline": train_baseline, "cnn": train_cnn}


def for_data_version(params: TrainParams, data_version: str | None) -> TrainParams:
    """The params a model of `data_version` trains with: the CNN augments only the versions
    `train.cnn.augment.versions` lists (so v1 and v2 models stay as they always were), and the
    versions made from them with labels from the field (`v3+field1` augments as v3 does)."""
    augment = params.cnn.augment
    if augment is None or (data_version and base_version(data_version) in augment.versions):
        return params
    return params.model_copy(update={"cnn": params.cnn.model_copy(update={"augment": None})})


def train(
    family: str,
    params: TrainParams,
    train_data: tuple[np.ndarray, np.ndarray],
    val_data: tuple[np.ndarray, np.ndarray],
    on_epoch: EpochCallback | None = None,
    data_version: str | None = None,
) -> TrainResult:
    """Train one family; `on_epoch(epoch, metrics)` sees every epoch's loss and accuracy.

    `data_version` names the data (as data.dvc does, e.g. "v3"): it decides whether the CNN
    augments (`for_data_version`); without it, nothing is augmented.
    """
    if family not in TRAINERS:
        raise ValueError(f"unknown model family {family!r}; choose one of {', '.join(FAMILIES)}")
    params = for_data_version(params, data_version)
    augmented = family == "cnn" and params.cnn.augment is not None
    history: list[dict[str, float]] = []

    def record(epoch: int, metrics: dict[str, float]) -> None:
        history.append({"epoch": epoch, **metrics})
        if on_epoch:
            on_epoch(epoch, metrics)

    started = time.perf_counter()
    classifier = TRAINERS[family](params, train_data, val_data, record)
    return TrainResult(family, classifier, history, time.perf_counter() - started, augmented)
