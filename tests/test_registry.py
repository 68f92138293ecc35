"""The gate's rule, on its own (the integration tests run it against a real registry)."""

from __future__ import annotations

import pytest

from app.config import RegistryParams
from app.registry import GateDecision, decide

RULE = RegistryParams(min_accuracy=0.95, tolerance=0.015)


@pytest.mark.parametrize(
    ("challenger", "champion", "promoted", "reason"),
    [
        ({"val": 0.97}, None, True, "first champion"),
        ({"val": 0.90}, None, False, "below the minimum 0.9500"),
        (
            {"val": 0.90},
            {"val": 0.80},
            False,
            "below the minimum",
        ),  # beating a bad one is not enough
        ({"val": 0.96}, {"val": 0.98}, False, "worse than champion v3 on val by more than 0.0150"),
        ({"val": 0.98}, {"val": 0.98}, True, "within 0.0150 of champion v3"),  # a tie passes
        ({"val": 0.97}, {"val": 0.98}, True, "val 0.9700 vs 0.9800"),  # within the margin
        ({"val": 0.99}, {"val": 0.98}, True, "val 0.9900 vs 0.9800"),
        # v3 against v2: a little less on val, far more on shifted digits.
        (
            {"val": 0.9889, "shifted_val": 0.93},
            {"val": 1.0, "shifted_val": 0.6},
            True,
            "shifted_val",
        ),
        # Better on val cannot buy a loss on the shifted set, nor the other way round.
        (
            {"val": 1.0, "shifted_val": 0.6},
            {"val": 0.99, "shifted_val": 0.93},
            False,
            "on shifted_val",
        ),
        ({"val": 0.96, "shifted_val": 0.99}, {"val": 0.99, "shifted_val": 0.93}, False, "on val"),
    ],
)
def test_gate_rule(challenger, champion, promoted, reason):
    decision, why = decide(challenger, champion, RULE, "3" if champion is not None else None)
    assert decision is promoted
    assert reason in why


def test_the_rule_holds_at_its_edge():
    """Exactly the tolerance below passes; a hair more fails (floating point included)."""
    assert decide({"val": 0.985}, {"val": 1.0}, RULE, "1")[0]
    assert not decide({"val": 0.9849}, {"val": 1.0}, RULE, "1")[0]


def test_every_number_the_gate_used_is_a_tag():
    decision = GateDecision(
        version="5",
        promoted=True,
        reason="within",
        challenger={"val": 0.9889, "shifted_val": 0.93},
        champion={"val": 0.9972, "shifted_val": 0.6},
        champion_version="4",
        min_accuracy=0.95,
        tolerance=0.015,
    )
    assert decision.as_tags() == {
        "gate.decision": "promoted",
        "gate.reason": "within",
        "gate.champion_version": "4",
        "gate.min_accuracy": "0.9500",
        "gate.tolerance": "0.0150",
        "gate.challenger_accuracy": "0.9889",
        "gate.champion_accuracy": "0.9972",
        "gate.challenger_shifted_val_accuracy": "0.9300",
        "gate.champion_shifted_val_accuracy": "0.6000",
    }
    assert (decision.challenger_accuracy, decision.champion_accuracy) == (0.9889, 0.9972)


def test_the_live_rule_wants_requests_then_labels_or_else_agreement(params):
    from app.registry import LiveEvidence, decide_live

    rule = params.registry.live.model_copy(
        update={"min_requests": 100, "min_agreement": 0.9, "min_labels": 30}
    )
    few = LiveEvidence(99, 1.0, 0, None, None)
    assert decide_live(few, rule) == (False, "99 live requests seen, 100 needed")
    agreeing = LiveEvidence(100, 0.95, 10, 0.5, 0.99)  # 10 labels: too few to count
    assert decide_live(agreeing, rule)[0]
    assert not decide_live(LiveEvidence(100, 0.85, 10, 1.0, 0.9), rule)[0]
    assert not decide_live(LiveEvidence(100, None, 0, None, None), rule)[0]
    # With labels, accuracy decides: a challenger right where the champion is wrong disagrees.
    better = LiveEvidence(100, 0.8, 40, 0.99, 0.95)
    assert decide_live(better, rule) == (True, "live accuracy 0.9900 on 40 labels, champion 0.9500")
    worse = LiveEvidence(100, 0.99, 40, 0.90, 0.95)
    promoted, reason = decide_live(worse, rule)
    assert not promoted and "more than 0.0200 below the champion's 0.9500" in reason
