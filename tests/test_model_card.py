"""Every version the gate judges gets a model card: its registry description and a run artifact,
written from the run's own numbers."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from sklearn.exceptions import ConvergenceWarning

from app import registry
from app.model_card import ARTIFACT
from app.training import train_and_log
from tests.helpers import champion_of, isolated


def card_of(settings, version: str) -> tuple[str, str]:
    """The version's description, and the card logged with its run."""
    client = MlflowClient()
    described = client.get_model_version(settings.model_name, version)
    logged = client.download_artifacts(described.run_id, ARTIFACT)
    return described.description, Path(logged).read_text()


def test_a_promoted_and_a_rejected_version_each_carry_their_card(local_registry, params):
    settings = isolated(local_registry)
    first = champion_of(settings, params)
    description, artifact = card_of(settings, first)
    run = MlflowClient().get_run(
        MlflowClient().get_model_version(settings.model_name, first).run_id
    )
    assert description == artifact  # the same card in both places
    assert f"data version `{run.data.tags['data_version']}`" in description
    assert run.data.tags["data_md5"] in description and run.data.tags["git_commit"] in description
    assert "**Gate: promoted.**" in description and "first champion" in description
    val = float(
        MlflowClient()
        .get_model_version(settings.model_name, first)
        .tags["gate.challenger_accuracy"]
    )
    assert f"| {val:.4f} | none |" in description  # its own number, no champion to compare
    assert "## Intended use" in description and "Shifted digits" in description

    # A baseline that learned almost nothing (one iteration, a tiny C): the gate rejects it.
    with pytest.warns(ConvergenceWarning):  # what one iteration is meant to give
        weak = train_and_log(settings, params, "baseline", overrides={"max_iter": 1, "C": 1e-6})
    second = registry.register_challenger(settings, weak.model_uri).version
    decision = registry.gate(settings, params, second)
    assert not decision.promoted
    description, artifact = card_of(settings, second)
    assert description == artifact and "**Gate: rejected.**" in description
    assert decision.reason in description and f"champion v{first}" in description
