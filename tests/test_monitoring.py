"""Drift: the reference, the window, the scores, and the gauges that export them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.data.build import shifted_batch
from app.monitoring.drift import (
    DriftMonitor,
    DriftReference,
    DriftWindow,
    build_reference,
    pixel_shares,
)
from app.serving.telemetry import DriftGauges
from app.training import evaluate, train

DRIFT_GAUGES = {
    "api_drift_window_inputs",
    "api_input_drift_score",
    "api_input_drift_threshold",
    "api_prediction_shift",
    "api_window_confidence_mean",
    "api_reference_confidence_mean",
}


@pytest.fixture(scope="module")
def baseline(params, v1_arrays):
    train_data, val_data = v1_arrays
    return train("baseline", params.train, train_data, val_data).classifier


@pytest.fixture(scope="module")
def reference(params, v1_arrays, baseline) -> DriftReference:
    (train_x, _), (val_x, val_y) = v1_arrays
    return build_reference(
        params.monitoring, train_x, evaluate(baseline, val_x, val_y).probabilities
    )


def fill(monitor: DriftMonitor, classifier, features: np.ndarray) -> None:
    """What the API does per request: predict, then copy the rows into the window."""
    for row in features:
        probabilities = classifier.predict_proba(row[None])
        monitor.window.add(row[None], probabilities.argmax(axis=1), probabilities.max(axis=1))


def test_pixel_shares_count_each_pixel_into_its_bin():
    features = np.array([[0, 2, 16], [0, 5, 12], [0.5, 3.9, 11.9], [0, 4, 16]], dtype=float)
    shares = pixel_shares(features, [1, 4, 12])  # bins: <1, 1-4, 4-12, >=12
    assert shares.tolist() == [
        [1.0, 0.0, 0.0, 0.0],
        [0.0, 0.5, 0.5, 0.0],
        [0.0, 0.0, 0.25, 0.75],
    ]


def test_the_reference_describes_training_inputs_and_val_answers(reference, params, v1_arrays):
    (train_x, _), (val_x, _) = v1_arrays
    assert (reference.train_size, reference.val_size) == (len(train_x), len(val_x))
    assert np.allclose(np.sum(reference.pixel_shares, axis=1), 1, atol=1e-5)
    assert len(reference.ink_shares) == 10
    assert math.isclose(sum(reference.ink_shares), 1, abs_tol=1e-5)
    assert all(0.08 <= share <= 0.12 for share in reference.ink_shares)  # deciles
    assert math.isclose(sum(reference.digit_shares), 1, abs_tol=1e-5)
    assert 0.5 < reference.confidence_mean <= 1
    assert reference.params == params.monitoring


def test_the_reference_survives_its_json_file(reference, tmp_path):
    assert DriftReference.load(reference.save(tmp_path / "reference.json")) == reference


def test_the_window_keeps_the_last_rows_in_a_ring():
    window = DriftWindow(size=4)
    for value in range(6):
        window.add(np.full((1, 64), value), np.array([value]), np.array([value / 10]))
    features, digits, confidences = window.snapshot()
    assert sorted(digits.tolist()) == [2, 3, 4, 5]
    assert sorted(features[:, 0].tolist()) == [2, 3, 4, 5]
    window.add(np.zeros((9, 64)), np.arange(9), np.zeros(9))  # more rows than it holds
    assert sorted(window.snapshot()[1].tolist()) == [5, 6, 7, 8]
    features[:] = -1  # a snapshot is a copy
    assert window.snapshot()[0].min() == 0


def test_rows_that_run_past_the_end_of_the_ring_wrap_around():
    window = DriftWindow(size=4)
    window.add(np.full((3, 64), 1.0), np.array([1, 1, 1]), np.full(3, 0.1))  # one slice
    window.add(np.full((3, 64), 2.0), np.array([2, 2, 2]), np.full(3, 0.2))  # wraps
    features, digits, confidences = window.snapshot()
    assert sorted(digits.tolist()) == [1, 2, 2, 2]
    assert features[:, 0].tolist() == [2.0, 2.0, 1.0, 2.0]  # slots 0, 1 and 3 were rewritten
    assert confidences.tolist() == pytest.approx([0.2, 0.2, 0.1, 0.2])


def test_no_score_below_min_inputs(reference, baseline, v1_arrays):
    monitor = DriftMonitor(reference)
    (_, _), (val_x, _) = v1_arrays
    fill(monitor, baseline, val_x[: reference.params.min_inputs - 1])
    scores = monitor.scores()
    assert scores.inputs == reference.params.min_inputs - 1
    assert math.isnan(scores.input_drift) and math.isnan(scores.mean_confidence)
    fill(monitor, baseline, val_x[:1])
    assert not math.isnan(monitor.scores().input_drift)


def test_val_traffic_stays_below_the_threshold_and_the_shifted_batch_goes_above(
    reference, baseline, params, v1_arrays
):
    (_, _), (val_x, _) = v1_arrays
    rng = np.random.default_rng(0)
    calm = DriftMonitor(reference)
    fill(calm, baseline, val_x[rng.permutation(len(val_x))[: reference.params.window]])
    drifted = DriftMonitor(reference)
    fill(drifted, baseline, shifted_batch(params.data).images)
    calm_score, drift_score = calm.scores().input_drift, drifted.scores().input_drift
    threshold = reference.params.drift_threshold
    assert calm_score < threshold / 2, calm_score
    assert drift_score > threshold * 1.5, drift_score
    assert calm.scores().prediction_shift < drifted.scores().prediction_shift


def test_the_gauges_are_always_exported(reference):
    registry = CollectorRegistry()
    current: list[DriftMonitor | None] = [None]
    registry.register(DriftGauges(lambda: current[0]))

    def gauges() -> dict[str, float]:
        text = generate_latest(registry).decode()
        families = text_string_to_metric_families(text)
        return {family.name: family.samples[0].value for family in families}

    assert set(gauges()) == DRIFT_GAUGES  # no model yet: every gauge, as NaN
    assert all(math.isnan(value) for value in gauges().values())
    current[0] = DriftMonitor(reference)
    values = gauges()
    assert values["api_drift_window_inputs"] == 0
    assert values["api_input_drift_threshold"] == reference.params.drift_threshold
    assert values["api_reference_confidence_mean"] == reference.confidence_mean
    assert math.isnan(values["api_input_drift_score"])
