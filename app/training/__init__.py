"""Training stage: two model families, tracked in MLflow."""

from app.training.fit import FAMILIES, Evaluation, TrainResult, evaluate, train
from app.training.models import DigitsModel, probabilities_frame
from app.training.tracking import LoggedRun, MlflowUnavailable, setup_mlflow, train_and_log

__all__ = [
    "FAMILIES",
    "DigitsModel",
    "Evaluation",
    "LoggedRun",
    "MlflowUnavailable",
    "TrainResult",
    "evaluate",
    "probabilities_frame",
    "setup_mlflow",
    "train",
    "train_and_log",
]
