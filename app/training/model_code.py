"""The code MLflow logs with every model ("models from code"): no pickled Python objects."""

import mlflow

from app.training.models import DigitsModel

mlflow.models.set_model(DigitsModel())
