"""Hidden cases of lab 10 (progressive delivery), run by the grader in the learner's kernel.

Each case runs after the cells tagged setup, parameters and exercise-N, so the learner's
functions exist. Exercise 1's cases compare the learner's routing with the API's own rule
(`app.serving.rollout.canary_serves`) on clients, versions and shares of their own; exercise
2's cases are evidence built here, on and around each limit. A case imports what it uses itself;
the grader sends its source, calls it and deletes its name, so the learner's names stay
untouched. It raises AssertionError with a plain message when the answer is wrong; a stub's
NotImplementedError passes through untouched. Nothing here touches the lab's API or registry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.grading import Cases

if TYPE_CHECKING:
    from collections.abc import Callable

    # In the learner's kernel: the learner's functions (solutions/10_progressive_delivery.ipynb).
    on_canary: Callable[[list[str], str, float], set[str]] = ...
    promote: Callable[..., tuple[bool, str]] = ...

cases = Cases()


@cases.exercise(1)
def _the_same_clients_as_the_api_for_any_version_and_share():
    """The API's rule, for other clients, versions and shares."""
    from app.serving.rollout import CANARY, Rollout, canary_serves

    ids = [f"user-{i}" for i in range(500)]
    for version, share in (("3", 0.1), ("12", 0.5), ("12", 0.9), ("7", 1.0), ("7", 0.0)):
        expected = {i for i in ids if canary_serves(Rollout(CANARY, share, None), i, version)}
        mine = on_canary(list(ids), version, share)
        if mine != expected:
            raise AssertionError(
                f"version {version}, share {share}: you chose {len(mine)} clients, the API "
                f"{len(expected)} ({len(mine ^ expected)} differ): hash '<version>:<client id>'"
            )
    if on_canary(["", "user-1"], "7", 1.0) != {"user-1"}:
        raise AssertionError("an empty client id is never on the canary, even at a share of 1")


@cases.exercise(1)
def _the_list_is_left_as_it_was():
    """The learner's function reads the ids, never changes them."""
    ids = ["b", "a", "c"]
    on_canary(ids, "1", 0.5)
    if ids != ["b", "a", "c"]:
        raise AssertionError(f"on_canary changed the list it was given: {ids}")


@cases.helper
def _lab10_evidence(**changes):
    """Evidence with enough requests and agreement, no labels, and these changes."""
    base = {"requests": 300, "agreement": 0.95, "labels": 0, "accuracy": None}
    return base | {"champion_accuracy": None} | changes


@cases.exercise(2)
def _each_rule_in_its_order_and_on_its_limit():
    """Requests first; labels when there are enough; else agreement; limits pass."""
    rule = (200, 0.9, 30, 0.02)
    said = promote(_lab10_evidence(requests=200), *rule)
    if said[0] is not True:
        raise AssertionError(f"exactly min_requests requests is enough: {said}")
    said = promote(
        _lab10_evidence(requests=199, labels=99, accuracy=1.0, champion_accuracy=0.5), *rule
    )
    if said[0] is not False or "requests" not in said[1]:
        raise AssertionError(f"199 requests: no, whatever the labels say, naming requests: {said}")
    labelled = {"labels": 30, "agreement": 0.1}
    exact = (200, 0.9, 30, 0.125)  # binary fractions: exactly on the limit
    said = promote(_lab10_evidence(**labelled, accuracy=0.75, champion_accuracy=0.875), *exact)
    if said[0] is not True:
        raise AssertionError(f"accuracy exactly max_gap below the champion's passes: {said}")
    said = promote(_lab10_evidence(**labelled, accuracy=0.92, champion_accuracy=0.95), *rule)
    if said[0] is not False or "accuracy" not in said[1]:
        raise AssertionError(f"accuracy 0.03 below the champion's: no, naming accuracy: {said}")
    said = promote(_lab10_evidence(labels=29, accuracy=0.99, champion_accuracy=0.5), *rule)
    if said[0] is not True:
        raise AssertionError(f"29 labels are too few to count: agreement 0.95 decides: {said}")


@cases.exercise(2)
def _agreement_decides_only_without_enough_labels():
    """No agreement and no labels is a no; labels without both accuracies fall to agreement."""
    rule = (200, 0.9, 30, 0.02)
    said = promote(_lab10_evidence(agreement=None), *rule)
    if said[0] is not False or "agreement" not in said[1]:
        raise AssertionError(f"no agreement known, no labels: no, naming agreement: {said}")
    said = promote(_lab10_evidence(labels=50, accuracy=0.99, agreement=0.5), *rule)
    if said[0] is not False:
        raise AssertionError(
            f"50 labels but no champion accuracy to compare with: agreement 0.5 decides: {said}"
        )
    if not isinstance(said[1], str) or not said[1]:
        raise AssertionError("the reason is a sentence")
