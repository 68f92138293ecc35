"""Training stage: two model families, tracked in MLflow.

Its names load on first use (`app.lazy`): the API imports `app.training.models` alone, never
the trainer (`fit`, `tracking`) nor torch for a baseline.
"""

from app.lazy import exports

__getattr__, __all__ = exports(
    __name__,
    {
        "fit": ["FAMILIES", "Evaluation", "TrainResult", "evaluate", "train"],
        "models": ["DigitsModel", "probabilities_frame"],
        "tracking": ["LoggedRun", "MlflowUnavailable", "setup_mlflow", "train_and_log"],
    },
)
