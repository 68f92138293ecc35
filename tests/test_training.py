"""Training without MLflow: accuracy floors, reproducibility, robustness, saving and loading."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from app.training import evaluate, probabilities_frame, train
from app.training.models import fingerprint, load_classifier, save_classifier
from app.training.tracking import with_overrides

SMOKE = {"epochs": 2}  # a CNN run CI can afford many times: checks mechanics, not accuracy
FAMILIES = ("baseline", "cnn")
FLOORS = {"baseline": 0.95, "cnn": 0.97}  # the targets of the training stage, on v1


@pytest.fixture(scope="session")
def trained(v1_arrays, params):
    """Both families, trained once on v1 with the real params."""
    train_data, val_data = v1_arrays
    return {family: train(family, params.train, train_data, val_data) for family in FAMILIES}


@pytest.mark.parametrize("family", FAMILIES)
def test_accuracy_floor_on_v1(trained, v1_arrays, family):
    accuracy = evaluate(trained[family].classifier, *v1_arrays[1]).accuracy
    assert accuracy >= FLOORS[family], f"{family}: {accuracy:.4f}"


@pytest.mark.parametrize("family", FAMILIES)
def test_predictions_are_stable_under_tiny_noise(trained, v1_arrays, family):
    features, _ = v1_arrays[1]
    noise = np.random.default_rng(0).normal(0, 0.2, features.shape).astype(np.float32)
    classifier = trained[family].classifier
    before = classifier.predict_proba(features).argmax(axis=1)
    after = classifier.predict_proba(np.clip(features + noise, 0, 16)).argmax(axis=1)
    assert (before == after).mean() >= 0.98


@pytest.mark.parametrize("family", FAMILIES)
def test_probabilities_are_a_distribution(trained, v1_arrays, family):
    probabilities = trained[family].classifier.predict_proba(v1_arrays[1][0])
    assert probabilities.shape == (len(v1_arrays[1][1]), 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)


def test_same_data_params_and_seed_give_the_same_model(v1_arrays, params):
    smoke = with_overrides(params, "cnn", SMOKE).train
    first = train("cnn", smoke, *v1_arrays)
    second = train("cnn", smoke, *v1_arrays)
    assert first.history == second.history
    features = v1_arrays[1][0]
    np.testing.assert_array_equal(
        first.classifier.predict_proba(features), second.classifier.predict_proba(features)
    )


def test_another_seed_gives_another_model(v1_arrays, params):
    smoke = with_overrides(params, "cnn", SMOKE).train
    reseeded = smoke.model_copy(update={"seed": smoke.seed + 1})
    assert train("cnn", smoke, *v1_arrays).history != train("cnn", reseeded, *v1_arrays).history


def test_history_has_a_row_per_epoch(v1_arrays, params):
    seen = []
    result = train(
        "cnn",
        with_overrides(params, "cnn", SMOKE).train,
        *v1_arrays,
        on_epoch=lambda epoch, metrics: seen.append(epoch),
    )
    assert seen == [0, 1]
    columns = {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy"}
    assert set(result.history[0]) == columns


@pytest.mark.parametrize("family", FAMILIES)
def test_save_and_load_give_the_same_predictions(trained, v1_arrays, family, tmp_path):
    classifier = trained[family].classifier
    path, config = save_classifier(classifier, family, tmp_path)
    loaded = load_classifier(path, config)
    features = v1_arrays[1][0]
    np.testing.assert_allclose(
        loaded.predict_proba(features), classifier.predict_proba(features), atol=1e-6
    )


def test_output_frame_names_the_digit_and_its_probabilities():
    frame = probabilities_frame(np.array([[0.1] * 9 + [0.1], [0.0] * 3 + [1.0] + [0.0] * 6]))
    assert list(frame.columns) == ["digit", *[f"p_{digit}" for digit in range(10)]]
    assert frame["digit"].tolist() == [0, 3]


def test_unknown_family_is_refused(v1_arrays, params):
    with pytest.raises(ValueError, match="unknown model family 'forest'"):
        train("forest", params.train, *v1_arrays)


def test_overrides_are_validated(params):
    with pytest.raises(ValidationError, match="epochs"):
        with_overrides(params, "cnn", {"epochs": 0})
    assert with_overrides(params, "baseline", {"C": 2.0}).train.baseline.C == 2.0
    assert params.train.baseline.C != 2.0  # the original is untouched


@pytest.mark.parametrize(("family", "change"), [("baseline", {"C": 1.0}), ("cnn", {"seed": 1})])
def test_fingerprint_is_the_same_for_the_same_training_only(v1_arrays, params, family, change):
    overrides = SMOKE if family == "cnn" else {}
    same = with_overrides(params, family, overrides).train
    other = same.model_copy(update=change) if "seed" in change else None
    other = other or with_overrides(params, family, overrides | change).train
    first, again, different = (
        fingerprint(train(family, p, *v1_arrays).classifier) for p in (same, same, other)
    )
    assert first == again != different
