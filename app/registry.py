"""The model registry: register a run's model as the challenger, and gate its promotion."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import mlflow
import numpy as np
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from app.config import Params, Settings
from app.data.images import load_split
from app.training.models import FINGERPRINT

log = logging.getLogger(__name__)
CHAMPION, CHALLENGER = "champion", "challenger"


@dataclass(frozen=True)
class GateDecision:
    """Whether a challenger was promoted, why, and the numbers the decision rests on."""

    version: str
    promoted: bool
    reason: str
    challenger_accuracy: float
    champion_version: str | None
    champion_accuracy: float | None

    def as_tags(self) -> dict[str, str]:
        return {
            "gate.decision": "promoted" if self.promoted else "rejected",
            "gate.reason": self.reason,
            "gate.challenger_accuracy": f"{self.challenger_accuracy:.4f}",
            "gate.champion_version": self.champion_version or "none",
            "gate.champion_accuracy": (
                "none" if self.champion_accuracy is None else f"{self.champion_accuracy:.4f}"
            ),
        }


def register_challenger(settings: Settings, model_uri: str) -> ModelVersion:
    """Point the `challenger` alias at a logged model (`models:/m-...`), registered once.

    A model that learned exactly what a registered version learned (same fingerprint: same
    data, params and seed) is not registered again: the alias goes to that version, so a
    rerun adds no look-alike versions.
    """
    client, name = MlflowClient(), settings.model_name
    logged = mlflow.get_logged_model(model_uri.removeprefix("models:/"))
    run = client.get_run(logged.source_run_id)
    learned = run.data.tags.get(FINGERPRINT, "")
    version = same_model(client, name, learned) if learned else None
    if version is None:
        create_registered_model(client, name)
        version = client.create_model_version(
            name,
            source=model_uri,
            run_id=run.info.run_id,
            model_id=logged.model_id,
            tags={FINGERPRINT: learned, "run_name": run.info.run_name},
        )
    client.set_registered_model_alias(name, CHALLENGER, version.version)
    return version


def create_registered_model(client: MlflowClient, name: str) -> None:
    """Create the registered model on first use (MLflow's own helper prints to stderr)."""
    try:
        client.create_registered_model(name)
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


def same_model(client: MlflowClient, name: str, learned: str) -> ModelVersion | None:
    """The version of `name` whose model has this fingerprint, if there is one."""
    found = client.search_model_versions(f"name = '{name}'")
    return next((v for v in found if v.tags.get(FINGERPRINT) == learned), None)


def version_by_alias(settings: Settings, alias: str) -> ModelVersion | None:
    """The version an alias points at, or None when the alias (or the model) does not exist."""
    try:
        return MlflowClient().get_model_version_by_alias(settings.model_name, alias)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def accuracy_on(model_uri: str, features: np.ndarray, labels: np.ndarray) -> float:
    """Load a registered model and measure its accuracy on the given data."""
    predictions = mlflow.pyfunc.load_model(model_uri).predict(features)["digit"].to_numpy()
    return float((predictions == labels).mean())


def decide(
    challenger: float, champion: float | None, floor: float, champion_version: str | None
) -> tuple[bool, str]:
    """The gate's rule: clear the floor, and do not be worse than the champion.

    Ties pass: at equal accuracy the newer model wins, as it was trained on newer data or code.
    (A retrained identical model never gets here as a new version: see register_challenger.)
    """
    if challenger < floor:
        return False, f"accuracy {challenger:.4f} is below the minimum {floor:.4f}"
    if champion is None:
        return True, f"first champion: accuracy {challenger:.4f} >= {floor:.4f}"
    if challenger < champion:
        return False, f"worse than champion v{champion_version}: {challenger:.4f} < {champion:.4f}"
    return True, f"not worse than champion v{champion_version}: {challenger:.4f} >= {champion:.4f}"


def gate(settings: Settings, params: Params, version: str) -> GateDecision:
    """Promote `version` to champion if it clears the floor and is not worse than the champion.

    Both models are scored now, on the same val split, so the comparison is fair even if the
    champion was trained on another data version. The decision is recorded as version tags.
    """
    name, floor = settings.model_name, params.registry.min_accuracy
    features, labels = load_split(settings.data_dir / "val")
    challenger = accuracy_on(f"models:/{name}/{version}", features, labels)
    current = version_by_alias(settings, CHAMPION)
    if current and current.version == version:  # a rerun that learned the champion again
        reason = f"v{version} is already the champion: nothing changes"
        log.info("gate: %s", reason)
        return GateDecision(version, True, reason, challenger, version, challenger)
    champion = (
        accuracy_on(f"models:/{name}/{current.version}", features, labels) if current else None
    )
    promoted, reason = decide(challenger, champion, floor, current.version if current else None)
    decision = GateDecision(
        version=version,
        promoted=promoted,
        reason=reason,
        challenger_accuracy=challenger,
        champion_version=current.version if current else None,
        champion_accuracy=champion,
    )
    client = MlflowClient()
    for key, value in decision.as_tags().items():
        client.set_model_version_tag(name, version, key, value)
    if promoted:
        client.set_registered_model_alias(name, CHAMPION, version)
    log.info("gate: version %s %s (%s)", version, decision.as_tags()["gate.decision"], reason)
    return decision


def best_run(settings: Settings, data_md5: str, family: str | None = None) -> mlflow.entities.Run:
    """The run with the highest val accuracy among finished runs on the given data."""
    experiment = mlflow.get_experiment_by_name(settings.experiment_name)
    query = f"tags.data_md5 = '{data_md5}' and attributes.status = 'FINISHED'"
    if family:
        query += f" and params.family = '{family}'"
    runs = mlflow.search_runs(
        experiment_ids=[experiment.experiment_id] if experiment else [],
        filter_string=query,
        order_by=["metrics.val_accuracy DESC", "attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    if not runs:
        raise LookupError(f"no finished run on data {data_md5} in {settings.experiment_name!r}")
    return runs[0]
