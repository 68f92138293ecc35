"""The CNN family in torch: the network, and the classifier that wraps it for prediction.

Only a CNN needs torch: the API imports this module when it serves one, never for a baseline.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from app.config import CnnParams
from app.data.images import MAX_VALUE, SIDE
from app.training.models import CLASSES


class DigitsCNN(nn.Module):
    """Two 3x3 convolutions with batch norm, one 2x2 pooling, then a small dense head."""

    def __init__(self, params: CnnParams):
        super().__init__()
        self.params = params
        first, second = params.channels
        self.layers = nn.Sequential(
            nn.Conv2d(1, first, 3, padding=1),
            nn.BatchNorm2d(first),
            nn.ReLU(),
            nn.Conv2d(first, second, 3, padding=1),
            nn.BatchNorm2d(second),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 8x8 -> 4x4
            nn.Dropout(params.conv_dropout),
            nn.Flatten(),
            nn.Linear(second * (SIDE // 2) ** 2, params.hidden),
            nn.ReLU(),
            nn.Dropout(params.dropout),
            nn.Linear(params.hidden, len(CLASSES)),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers(images)


def to_tensor(features: np.ndarray) -> torch.Tensor:
    """n x 64 pixels on the 0..16 scale -> n x 1 x 8 x 8 floats in 0..1."""
    array = np.asarray(features, dtype=np.float32).reshape(-1, 1, SIDE, SIDE) / MAX_VALUE
    return torch.from_numpy(array)


class TorchClassifier:
    """A trained CNN behind the same `predict_proba` as a scikit-learn estimator."""

    def __init__(self, network: DigitsCNN):
        self.network = network.eval()

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities, n x 10, for n x 64 pixel rows."""
        with torch.inference_mode():
            return torch.softmax(self.network(to_tensor(features)), dim=1).numpy()
