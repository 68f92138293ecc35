"""The gate's rule, on its own (the integration tests run it against a real registry)."""

from __future__ import annotations

import pytest

from app.registry import decide

FLOOR = 0.95


@pytest.mark.parametrize(
    ("challenger", "champion", "promoted", "reason"),
    [
        (0.97, None, True, "first champion"),
        (0.90, None, False, "below the minimum 0.9500"),
        (0.90, 0.80, False, "below the minimum"),  # better than a bad champion is not enough
        (0.96, 0.98, False, "worse than champion v3: 0.9600 < 0.9800"),
        (0.98, 0.98, True, "not worse than champion v3"),  # a tie passes
        (0.99, 0.98, True, "not worse than champion v3: 0.9900 >= 0.9800"),
    ],
)
def test_gate_rule(challenger, champion, promoted, reason):
    decision, why = decide(challenger, champion, FLOOR, "3" if champion is not None else None)
    assert decision is promoted
    assert reason in why
