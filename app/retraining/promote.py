"""`python -m app.retraining promote`: move `@champion` to the challenger on what it did live.

The gate (`app.registry.gate`) judges a model offline, on the data's evaluation sets. With
progressive delivery the challenger first serves in shadow or on a canary share (app/serving/
rollout.py), and this step judges what it did there, from Prometheus (every API replica added
up): how many requests it scored or answered, how often it agreed with the champion, and, where
labels came back, how often it was right (`decide_live`, `registry.live` in params.yaml).

It moves `@champion` once: afterwards `@challenger` is the champion, so a second call finds
nothing to promote. A challenger the API rolled back (`rollout.stopped`) is never promoted. The
decision and its numbers are kept as `live.*` tags of the version, as the gate keeps its own.
"""

from __future__ import annotations

import logging

from mlflow.tracking import MlflowClient

from app.config import Params, Settings
from app.monitoring.alerts import query
from app.registry import (
    CHALLENGER,
    CHAMPION,
    LiveEvidence,
    decide_live,
    version_by_alias,
)

log = logging.getLogger("app.retraining")
STOPPED = "rollout.stopped"  # written by the API that rolled a canary back


def counted(settings: Settings, promql: str, by: str | None = None) -> dict[str, float]:
    """An instant query's values, by the label `by` ("" when there is none)."""
    return {
        series["metric"].get(by, "") if by else "": float(series["value"][1])
        for series in query(settings.prometheus_url, promql)
    }


def share(outcomes: dict[str, float], right: str) -> tuple[int, float | None]:
    """How many were counted, and the share of them that were `right`."""
    total = sum(outcomes.values())
    return int(total), (outcomes.get(right, 0.0) / total if total else None)


def live_evidence(settings: Settings, challenger: str, champion: str) -> LiveEvidence:
    """What the APIs saw the challenger do, from Prometheus' counters."""
    shadow = counted(
        settings,
        f'sum by (agreement) (api_shadow_predictions_total{{challenger_version="{challenger}"}})',
        by="agreement",
    )
    canary = counted(
        settings,
        "sum(api_role_requests_total"
        f'{{role="challenger", model_version="{challenger}", outcome="answered"}})',
    )
    scored, agreement = share(shadow, "agree")
    own = counted(
        settings,
        f'sum by (outcome) (api_feedback_labels_total{{model_version="{challenger}"}})',
        by="outcome",
    )
    in_shadow = counted(
        settings,
        f'sum by (outcome) (api_shadow_labels_total{{challenger_version="{challenger}"}})',
        by="outcome",
    )
    labels, accuracy = share(
        {k: own.get(k, 0) + in_shadow.get(k, 0) for k in own.keys() | in_shadow.keys()}, "correct"
    )
    theirs = counted(
        settings,
        f'sum by (outcome) (api_feedback_labels_total{{model_version="{champion}"}})',
        by="outcome",
    )
    return LiveEvidence(
        requests=scored + int(canary.get("", 0)),
        agreement=agreement,
        labels=labels,
        accuracy=accuracy,
        champion_accuracy=share(theirs, "correct")[1],
    )


def promote_on_evidence(settings: Settings, params: Params) -> tuple[bool, str]:
    """Promote `@challenger` if its live evidence passes `decide_live`; (promoted, why)."""
    client, name = MlflowClient(settings.mlflow_uri, settings.mlflow_uri), settings.model_name
    champion, challenger = (
        version_by_alias(settings, CHAMPION),
        version_by_alias(settings, CHALLENGER),
    )
    if challenger is None or champion is None or challenger.version == champion.version:
        return False, "no challenger to promote: @challenger is missing or is the champion"
    stopped = client.get_model_version(name, challenger.version).tags.get(STOPPED)
    if stopped:
        return False, f"v{challenger.version} was rolled back on its canary: {stopped}"
    evidence = live_evidence(settings, challenger.version, champion.version)
    promoted, reason = decide_live(evidence, params.registry.live)
    tags = {"live.decision": "promoted" if promoted else "rejected", "live.reason": reason}
    tags |= {f"live.{key}": str(value) for key, value in vars(evidence).items()}
    for key, value in tags.items():
        client.set_model_version_tag(name, challenger.version, key, value)
    if promoted:
        client.set_registered_model_alias(name, CHAMPION, challenger.version)
    log.info("v%s %s on live evidence: %s", challenger.version, tags["live.decision"], reason)
    return promoted, reason
