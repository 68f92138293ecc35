"""The model registry: register a run's model as the challenger, and gate its promotion."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from app.config import LiveParams, Params, RegistryParams, Settings
from app.data.images import EVALUATION_SETS, load_split
from app.model_card import ARTIFACT as CARD_ARTIFACT
from app.model_card import model_card

log = logging.getLogger(__name__)
CHAMPION, CHALLENGER = "champion", "challenger"
FINGERPRINT = "model_fingerprint"  # run and version tag: equal for runs that learned one model


Scores = dict[str, float]  # evaluation set ("val", "shifted_val") -> accuracy on it


@dataclass(frozen=True)
class GateDecision:
    """Whether a challenger was promoted, why, and every number the decision rests on."""

    version: str
    promoted: bool
    reason: str
    challenger: Scores  # on each evaluation set the judged data holds
    champion: Scores | None  # the same sets, None when there was no champion
    champion_version: str | None
    min_accuracy: float
    tolerance: float

    @property
    def challenger_accuracy(self) -> float:
        """The challenger's accuracy on val."""
        return self.challenger["val"]

    @property
    def champion_accuracy(self) -> float | None:
        """The champion's accuracy on val (None: no champion)."""
        return None if self.champion is None else self.champion["val"]

    def as_tags(self) -> dict[str, str]:
        """The decision as version tags: `gate.challenger_accuracy` is on val,
        `gate.challenger_shifted_val_accuracy` on shifted_val, and so on."""
        tags = {
            "gate.decision": "promoted" if self.promoted else "rejected",
            "gate.reason": self.reason,
            "gate.champion_version": self.champion_version or "none",
            "gate.min_accuracy": f"{self.min_accuracy:.4f}",
            "gate.tolerance": f"{self.tolerance:.4f}",
        }
        for name, score in self.challenger.items():
            suffix = "" if name == "val" else f"_{name}"
            theirs = None if self.champion is None else self.champion[name]
            tags[f"gate.challenger{suffix}_accuracy"] = f"{score:.4f}"
            tags[f"gate.champion{suffix}_accuracy"] = "none" if theirs is None else f"{theirs:.4f}"
        return tags


def register_challenger(settings: Settings, model_uri: str) -> ModelVersion:
    """Point the `challenger` alias at a logged model (`models:/m-...`), registered once.

    A model that learned exactly what a registered version learned (same fingerprint: same
    data, params and seed) is not registered again: the alias goes to that version, so a
    rerun adds no look-alike versions.
    """
    client, name = MlflowClient(), settings.model_name
    logged = mlflow.get_logged_model(model_uri.removeprefix("models:/"))
    if logged.source_run_id is None:
        raise LookupError(f"{model_uri} was not logged by a run: no lineage to register")
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
    return as_rest(version)


def as_rest(version: ModelVersion) -> ModelVersion:
    """A version as a tracking server describes it: its number a str (MLflow's SQL store, used
    without a server, gives an int, and `"1" != 1`)."""
    return ModelVersion.from_proto(version.to_proto())


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
        return as_rest(MlflowClient().get_model_version_by_alias(settings.model_name, alias))
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def accuracy_on(model_uri: str, features: np.ndarray, labels: np.ndarray) -> float:
    """Load a registered model and measure its accuracy on the given data."""
    return scores_on(model_uri, {"given": (features, labels)})["given"]


def evaluation_sets(data_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The evaluation sets this data holds: val always, shifted_val in versions that bring it."""
    return {
        name: load_split(data_dir / name) for name in EVALUATION_SETS if (data_dir / name).is_dir()
    }


def scores_on(model_uri: str, sets: dict[str, tuple[np.ndarray, np.ndarray]]) -> Scores:
    """A registered model's accuracy on each evaluation set (loaded once)."""
    model = mlflow.pyfunc.load_model(model_uri)
    return {
        name: float((model.predict(features)["digit"].to_numpy() == labels).mean())
        for name, (features, labels) in sets.items()
    }


@dataclass(frozen=True)
class LiveEvidence:
    """What the API saw a challenger do (app/serving/rollout.py), every replica added up."""

    requests: int  # requests it scored in shadow or answered on its canary
    agreement: float | None  # the share of the champion's answers it agreed with (shadow)
    labels: int  # labels of its own answers
    accuracy: float | None  # the share of those it got right
    champion_accuracy: float | None  # the champion's, on the labels of its answers meanwhile


def decide_live(evidence: LiveEvidence, rule: LiveParams) -> tuple[bool, str]:
    """The live rule: enough requests seen; then, with enough labels, an accuracy within
    `max_accuracy_gap` of the champion's; without them, agreement with the champion of at least
    `min_agreement` (a challenger that disagrees more may be right, but only labels can say so)."""
    if evidence.requests < rule.min_requests:
        return False, f"{evidence.requests} live requests seen, {rule.min_requests} needed"
    mine, theirs = evidence.accuracy, evidence.champion_accuracy
    if evidence.labels >= rule.min_labels and mine is not None and theirs is not None:
        if mine < theirs - rule.max_accuracy_gap:
            return False, (
                f"live accuracy {mine:.4f} on {evidence.labels} labels is more than "
                f"{rule.max_accuracy_gap:.4f} below the champion's {theirs:.4f}"
            )
        return True, f"live accuracy {mine:.4f} on {evidence.labels} labels, champion {theirs:.4f}"
    if evidence.agreement is None or evidence.agreement < rule.min_agreement:
        agreed = "none" if evidence.agreement is None else f"{evidence.agreement:.4f}"
        return False, (
            f"too few labels ({evidence.labels}) and agreement {agreed} with the champion is "
            f"below {rule.min_agreement:.4f}"
        )
    return True, f"agreed with the champion on {evidence.agreement:.4f} of {evidence.requests}"


def decide(
    challenger: Scores, champion: Scores | None, rule: RegistryParams, champion_version: str | None
) -> tuple[bool, str]:
    """The gate's rule: clear the floor on val, and be no worse than the champion, by more than
    the tolerance, on any evaluation set the data holds (val; shifted_val where there is one).

    A non-inferiority test: a newer model (newer data or code) wins unless it loses on some set
    by more than `tolerance`. Exact comparisons would fail on noise: the same training gives
    accuracies a digit or two apart on another CPU. And a model may trade a little of one set
    for a lot of another (v3 gives 0.3-1.1 points of val for 30 on shifted digits): judged on
    every set its data holds, with a margin, it wins; judged on val alone, it would not.
    """
    floor, tolerance = rule.min_accuracy, rule.tolerance
    if challenger["val"] < floor:
        return False, f"val accuracy {challenger['val']:.4f} is below the minimum {floor:.4f}"
    if champion is None:
        return True, f"first champion: val accuracy {challenger['val']:.4f} >= {floor:.4f}"
    for name, score in challenger.items():
        if score < champion[name] - tolerance:
            return False, (
                f"worse than champion v{champion_version} on {name} by more than {tolerance:.4f}: "
                f"{score:.4f} < {champion[name]:.4f}"
            )
    compared = ", ".join(
        f"{name} {score:.4f} vs {champion[name]:.4f}" for name, score in challenger.items()
    )
    return True, f"within {tolerance:.4f} of champion v{champion_version} or better: {compared}"


def gate(settings: Settings, params: Params, version: str) -> GateDecision:
    """Promote `version` to champion if `decide` says so; record every number as version tags.

    Both models are scored now, on the same evaluation sets of the data being judged, so the
    comparison is fair even if the champion was trained on another data version.
    """
    name, rule = settings.model_name, params.registry
    sets = evaluation_sets(settings.data_dir)
    challenger = scores_on(f"models:/{name}/{version}", sets)
    current = version_by_alias(settings, CHAMPION)
    if current and current.version == version:  # a rerun that learned the champion again
        reason = f"v{version} is already the champion: nothing changes"
        log.info("gate: %s", reason)
        decision = GateDecision(
            version,
            True,
            reason,
            challenger,
            challenger,
            version,
            rule.min_accuracy,
            rule.tolerance,
        )
        client = MlflowClient()
        if not client.get_model_version(name, version).description:  # gated before cards were
            write_card(client, name, decision)
        return decision
    champion = scores_on(f"models:/{name}/{current.version}", sets) if current else None
    promoted, reason = decide(challenger, champion, rule, current.version if current else None)
    decision = GateDecision(
        version=version,
        promoted=promoted,
        reason=reason,
        challenger=challenger,
        champion=champion,
        champion_version=current.version if current else None,
        min_accuracy=rule.min_accuracy,
        tolerance=rule.tolerance,
    )
    client = MlflowClient()
    for key, value in decision.as_tags().items():
        client.set_model_version_tag(name, version, key, value)
    write_card(client, name, decision)
    if promoted:
        client.set_registered_model_alias(name, CHAMPION, version)
    log.info("gate: version %s %s (%s)", version, decision.as_tags()["gate.decision"], reason)
    return decision


def write_card(client: MlflowClient, name: str, decision: GateDecision) -> None:
    """The version's model card: its description in the registry, and its run's artifact."""
    run_id = client.get_model_version(name, decision.version).run_id
    if run_id is None:  # registered here always from a run (register_challenger): never
        raise LookupError(f"{name} v{decision.version} has no run to write its card from")
    run = client.get_run(run_id)
    card = model_card(name, run, decision)
    client.update_model_version(name, decision.version, description=card)
    client.log_text(run.info.run_id, card, CARD_ARTIFACT)


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


def promote_best(
    settings: Settings,
    params: Params,
    data_md5: str,
    registered: Callable[[mlflow.entities.Run, str], None] | None = None,
) -> GateDecision:
    """The trainer's last step and the retrainer's: register the best run on this data as the
    challenger, then gate it. `registered(run, version)` hears of the version before the gate
    judges it (so that a failing gate still leaves the version on record)."""
    run = best_run(settings, data_md5)
    version = register_challenger(settings, run.data.tags["model_uri"]).version
    if registered:
        registered(run, version)
    return gate(settings, params, version)
