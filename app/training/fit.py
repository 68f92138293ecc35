"""Train either family on (features, labels) arrays and evaluate it: no MLflow in here."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.metrics import confusion_matrix, f1_score, log_loss, recall_score
from torch import nn

from app.config import TrainParams
from app.training.models import (
    CLASSES,
    Classifier,
    DigitsCNN,
    TorchClassifier,
    make_baseline,
    to_tensor,
)

FAMILIES = ("baseline", "cnn")
EpochCallback = Callable[[int, dict[str, float]], None]


@dataclass
class TrainResult:
    family: str
    classifier: Classifier
    history: list[dict[str, float]]  # one row of metrics per epoch
    seconds: float


@dataclass
class Evaluation:
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
        for epoch in range(cnn.epochs):
            network.train()
            order = torch.randperm(len(labels), generator=shuffler)
            loss_sum, correct = 0.0, 0
            for rows in order.split(cnn.batch_size):
                optimizer.zero_grad()
                logits = network(images[rows])
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


def train(
    family: str,
    params: TrainParams,
    train_data: tuple[np.ndarray, np.ndarray],
    val_data: tuple[np.ndarray, np.ndarray],
    on_epoch: EpochCallback | None = None,
) -> TrainResult:
    """Train one family; `on_epoch(epoch, metrics)` sees every epoch's loss and accuracy."""
    if family not in TRAINERS:
        raise ValueError(f"unknown model family {family!r}; choose one of {', '.join(FAMILIES)}")
    history: list[dict[str, float]] = []

    def record(epoch: int, metrics: dict[str, float]) -> None:
        history.append({"epoch": epoch, **metrics})
        if on_epoch:
            on_epoch(epoch, metrics)

    started = time.perf_counter()
    classifier = TRAINERS[family](params, train_data, val_data, record)
    return TrainResult(family, classifier, history, time.perf_counter() - started)
