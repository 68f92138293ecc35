"""Training without MLflow: accuracy floors, reproducibility, robustness, saving and loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mlflow.pyfunc import PythonModelContext
from pydantic import ValidationError

from app.config import REPO_ROOT, AugmentParams, ShiftParams, load_params
from app.data import build_version, fresh_shifted_batch, load_split
from app.data.build import shift_images
from app.training import evaluate, probabilities_frame, train
from app.training.cnn import to_tensor
from app.training.fit import augment, for_data_version
from app.training.models import DigitsModel, fingerprint, load_classifier, save_classifier
from app.training.onnx_model import (
    TOLERANCE,
    ExportMismatch,
    OnnxClassifier,
    check_equal,
    export_onnx,
)
from app.training.tracking import with_overrides

SMOKE = {"epochs": 2}  # a CNN run CI can afford many times: checks mechanics, not accuracy
FAMILIES = ("baseline", "cnn")
FLOORS = {"baseline": 0.95, "cnn": 0.97}  # the targets of the training stage, on v1
DRIFT_FLOOR = 0.90  # what the CNN retrained on v3 must reach on the fresh drifted batch


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


@pytest.mark.parametrize("data_version", [None, "v3"])  # v3's models augment their digits
def test_same_data_params_and_seed_give_the_same_model(v1_arrays, params, data_version):
    smoke = with_overrides(params, "cnn", SMOKE).train
    first = train("cnn", smoke, *v1_arrays, data_version=data_version)
    second = train("cnn", smoke, *v1_arrays, data_version=data_version)
    assert first.augmented == second.augmented == (data_version == "v3")
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


@pytest.mark.parametrize("family", FAMILIES)
def test_the_onnx_export_computes_what_the_model_does(trained, v1_arrays, family, tmp_path):
    """The whole classifier in one graph: raw pixels of any batch size in, probabilities out."""
    classifier = trained[family].classifier
    features = v1_arrays[1][0]
    before = classifier.predict_proba(features)
    path = export_onnx(classifier, family, tmp_path / "model.onnx")
    np.testing.assert_array_equal(classifier.predict_proba(features), before)  # left as it was
    assert check_equal(classifier, path, features) <= TOLERANCE
    exported = OnnxClassifier(path)
    for rows in (features[:1], features[:7], features):  # batch sizes it was not exported with
        expected = classifier.predict_proba(rows)
        np.testing.assert_allclose(exported.predict_proba(rows), expected, atol=TOLERANCE)
    digits = exported.predict_proba(features).argmax(axis=1)
    assert (digits == classifier.predict_proba(features).argmax(axis=1)).all()


def test_an_export_that_computes_something_else_is_refused(trained, v1_arrays, params, tmp_path):
    smoke = with_overrides(params, "cnn", SMOKE).train
    other = train("cnn", smoke, *v1_arrays).classifier
    path = export_onnx(other, "cnn", tmp_path / "other.onnx")  # another network's graph
    cnn = trained["cnn"].classifier
    with pytest.raises(ExportMismatch, match="differs from the model by"):
        check_equal(cnn, path, v1_arrays[1][0])


def test_a_model_logged_before_exports_loads_natively_or_says_why_not(trained, tmp_path):
    weights, config = save_classifier(trained["baseline"].classifier, "baseline", tmp_path)
    for runtime in ("auto", "native"):
        model = DigitsModel()
        model.load_context(
            PythonModelContext({"weights": str(weights)}, config | {"runtime": runtime})
        )
        assert model.runtime == "scikit-learn"
    with pytest.raises(ValueError, match="logged without an ONNX export"):
        context = {"weights": str(weights)}, config | {"runtime": "onnxruntime"}
        DigitsModel().load_context(PythonModelContext(*context))


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


def test_augmentation_is_seeded_and_changes_its_share_of_digits(v1_arrays, params):
    spec = params.train.cnn.augment
    images = to_tensor(v1_arrays[0][0])

    def draw(seed: int) -> torch.Tensor:
        return augment(images, spec, torch.Generator().manual_seed(seed))

    first, again, reseeded = draw(0), draw(0), draw(1)
    assert torch.equal(first, again) and not torch.equal(first, reseeded)
    assert first.min() >= 0 and first.max() <= 1
    changed = (first != images).flatten(1).any(dim=1).float().mean().item()
    assert changed == pytest.approx(spec.probability, abs=0.05)


def test_augmentation_thickens_as_the_drift_does(v1_arrays):
    """No turn, no noise: a thickened digit is exactly what `shift_images` makes of it."""
    features = v1_arrays[0][0][:100]
    thicken = AugmentParams(versions=[], probability=1, rotate_degrees=0, thicken=1, noise_std=0)
    drift = ShiftParams(seed=0, size=1, rotate_degrees=0, thicken=1, noise_std=0)
    augmented = augment(to_tensor(features), thicken, torch.Generator().manual_seed(0))
    expected = shift_images(features, drift)  # rounded to whole values: hence the tolerance
    np.testing.assert_allclose(augmented.numpy().reshape(-1, 64) * 16, expected, atol=0.05)
    assert expected.mean() > features.mean() * 1.2


def test_only_the_listed_data_versions_augment(v1_arrays, params):
    smoke = with_overrides(params, "cnn", SMOKE).train
    assert "v3" in smoke.cnn.augment.versions and "v1" not in smoke.cnn.augment.versions
    assert for_data_version(smoke, "v1").cnn.augment is None
    assert for_data_version(smoke, None).cnn.augment is None
    assert for_data_version(smoke, "v3") == smoke
    plain, augmented = (train("cnn", smoke, *v1_arrays, data_version=v) for v in ("v1", "v3"))
    assert (plain.augmented, augmented.augmented) == (False, True)
    assert plain.history != augmented.history


def test_augment_may_only_name_data_versions(tmp_path):
    """A misspelt version would switch augmentation off without a word: it is refused."""
    misspelt = tmp_path / "params.yaml"
    text = (REPO_ROOT / "params.yaml").read_text()
    misspelt.write_text(text.replace("versions: [v3]", "versions: [V3]"))
    with pytest.raises(ValidationError, match=r"augment.versions: \['V3'\] not in data.versions"):
        load_params(misspelt)


def test_v1_cnn_is_fooled_by_drifted_digits(trained, params):
    """What monitoring shows and retraining fixes: the v1 champion cannot read drifted digits."""
    fresh = fresh_shifted_batch(params.data)
    assert evaluate(trained["cnn"].classifier, fresh.images, fresh.labels).accuracy < 0.75


@pytest.fixture(scope="module")
def v3_arrays(tmp_path_factory, params):
    """(train, val) arrays of v3: v2 plus labelled shifted digits."""
    folder = build_version(params.data, "v3", tmp_path_factory.mktemp("built") / "v3")
    return load_split(folder / "train"), load_split(folder / "val")


def test_cnn_retrained_on_v3_reads_drifted_digits(v3_arrays, params):
    """The full v3 run (about 6 s): val stays high and unseen drifted digits are read."""
    result = train("cnn", params.train, *v3_arrays, data_version="v3")
    fresh = fresh_shifted_batch(params.data)
    val_accuracy = evaluate(result.classifier, *v3_arrays[1]).accuracy
    drift_accuracy = evaluate(result.classifier, fresh.images, fresh.labels).accuracy
    assert result.augmented
    assert val_accuracy >= FLOORS["cnn"], f"val {val_accuracy:.4f}"
    assert drift_accuracy >= DRIFT_FLOOR, f"fresh drifted batch {drift_accuracy:.4f}"
