"""Explanations: each map keeps its method's promise (its sum), and its top pixels decide.

The methods on a model whose credits are known; then on both trained families on v1's val split
(the masking check); then what a training run logs.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from app.explain import completeness_gap, masking_check, shapley_values
from app.training.explanations import CHECKED, integrated_gradients, log_explanations
from tests.helpers import isolated

# Blanking a map's 8 top pixels must change this many more answers than blanking 8 random ones
# (measured on v1's val: 0.87-1.0 against 0.05-0.10 for both families and methods).
MARGIN = 0.5
# Integrated gradients' sum misses the promised difference by its walk's discretisation: at 64
# steps at most 0.016 of a probability on v1's val (measured; 0.031 at 32 steps, 0.009 at 128).
IG_GAP = 0.03


def linear_model(weights: np.ndarray):
    """p(3) = weights . x exactly (other digits share the rest): each pixel's Shapley value is
    its weight times its ink, whatever the order it came back in."""

    def predict(features: np.ndarray) -> np.ndarray:
        target = features @ weights
        rest = np.repeat(((1 - target) / 9)[:, None], 10, axis=1)
        rest[:, 3] = target
        return rest

    return predict


def test_shapley_values_of_a_linear_model_are_its_weights_times_the_ink():
    rng = np.random.default_rng(1)
    weights = rng.uniform(-1, 1, 64) / 1000
    features = rng.integers(0, 17, (5, 64)).astype(np.float32)
    features[:, ::3] = 0  # blank pixels
    maps = shapley_values(linear_model(weights), features, np.full(5, 3))
    for row, explanation in zip(features, maps, strict=True):
        assert explanation.pixels == pytest.approx(weights * row, abs=1e-9)
        assert np.all(explanation.pixels[::3] == 0)  # a blank pixel brings nothing back
        assert completeness_gap(explanation) < 1e-9


def test_the_same_input_gets_the_same_map_and_orders_come_in_pairs(trained, v1_arrays):
    model = trained["baseline"].classifier
    rows = v1_arrays[1][0][:3]
    digits = model.predict_proba(rows).argmax(axis=1)
    first, again = (shapley_values(model.predict_proba, rows, digits) for _ in range(2))
    assert all(np.array_equal(a.pixels, b.pixels) for a, b in zip(first, again, strict=True))
    other = shapley_values(model.predict_proba, rows, digits, seed=1)
    assert not np.array_equal(first[0].pixels, other[0].pixels)  # the seed picks the orders
    with pytest.raises(ValueError, match="even number"):
        shapley_values(model.predict_proba, rows, digits, orders=3)


@pytest.mark.parametrize(
    ("family", "method"),
    [
        ("baseline", "shapley_sampling"),
        ("cnn", "shapley_sampling"),
        ("cnn", "integrated_gradients"),  # needs torch's gradients: the CNN's alone
    ],
)
def test_maps_keep_their_promise_and_their_top_pixels_decide(trained, v1_arrays, family, method):
    model = trained[family].classifier
    features = v1_arrays[1][0][:CHECKED]
    digits = model.predict_proba(features).argmax(axis=1)
    if method == "integrated_gradients":
        maps = integrated_gradients(model, features, digits)  # type: ignore[arg-type]
        tolerance = IG_GAP
    else:
        maps = shapley_values(model.predict_proba, features, digits)
        tolerance = 1e-5  # exact but for float32 sums
    assert max(completeness_gap(m) for m in maps) <= tolerance
    check = masking_check(model.predict_proba, features, np.stack([m.pixels for m in maps]))
    assert check.top_changed >= check.random_changed + MARGIN, check
    assert check.top_drop >= check.random_drop + MARGIN, check


def test_integrated_gradients_close_in_on_the_promise_with_more_steps(trained, v1_arrays):
    model = trained["cnn"].classifier
    features = v1_arrays[1][0][:40]
    digits = model.predict_proba(features).argmax(axis=1)
    gaps = [
        np.mean([completeness_gap(m) for m in integrated_gradients(model, features, digits, steps)])
        for steps in (8, 64)
    ]
    assert gaps[1] < gaps[0] / 2, gaps


def test_a_run_logs_its_maps_and_checks(trained, v1_arrays, local_registry, params):
    isolated(local_registry)
    with mlflow.start_run() as run:
        check = log_explanations(trained["cnn"], v1_arrays[1], params.data.shift, "cnn-test")
    client = MlflowClient()
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "explanations")}
    assert logged == {"explanations/maps.png", "explanations/checks.json"}
    checks = client.download_artifacts(run.info.run_id, "explanations/checks.json")
    summary = json.loads(Path(checks).read_text())
    assert summary["method"] == "integrated_gradients" and summary["val_rows"] == CHECKED
    assert summary["completeness_gap_max"] <= IG_GAP
    assert set(summary["shown"]) == {"right", "wrong", "shifted"}  # v1's CNN gets two wrong
    metrics = client.get_run(run.info.run_id).data.metrics
    assert metrics["explain_top8_changed"] == check.top_changed
    assert metrics["explain_top8_changed"] >= metrics["explain_random8_changed"] + MARGIN
