"""Hidden cases of lab 09 (labels from the field), run by the grader in the learner's kernel.

Each case runs after the cells tagged setup, parameters and exercise-N, so the learner's
functions exist. Exercise 1's cases build a feedback store of their own in a temporary folder
(`_lab09_store`): a real SQLite database written by `app.feedback.FeedbackStore`, with
predictions of chosen digits labelled in a chosen order, so the newest labels are known. Exercise
2's cases build batches of labels as DataFrames. A case imports what it uses itself; the grader
sends its source, calls it and deletes its name, so the learner's names stay untouched. It raises
AssertionError with a plain message when the answer is wrong; a stub's NotImplementedError passes
through untouched. Nothing here touches the lab's API, its store or the registry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.grading import Cases

if TYPE_CHECKING:
    from collections.abc import Callable

    # In the learner's kernel: the learner's functions (solutions/09_field_labels.ipynb).
    live_accuracy: Callable[..., tuple[int, float]] = ...
    refuse_batch: Callable[..., list[str]] = ...

cases = Cases()


@cases.helper
def _lab09_store(rows):
    """`with _lab09_store(rows) as engine:` a feedback store in a temporary folder holding, for
    each `(model_name, version, predicted, label)` of `rows`, one prediction, and labelled in the
    order of `rows` (the last row's label is the newest). Predictions are made in reverse order,
    so the newest label is not the newest prediction. Yields the store's engine."""
    import contextlib
    import tempfile
    import uuid
    from pathlib import Path

    import numpy as np

    from app.feedback import FeedbackStore, Made, utcnow

    @contextlib.contextmanager
    def opened():
        with tempfile.TemporaryDirectory(prefix="lab-09-grader-") as folder:
            store = FeedbackStore(f"sqlite:///{Path(folder) / 'feedback.db'}", 24, 10_000)
            try:
                ids = {}
                for index in reversed(range(len(rows))):
                    name, version, predicted, _ = rows[index]
                    batch = uuid.uuid4().hex
                    ids[index] = f"{batch}-0"
                    store.record(
                        Made(batch, utcnow(), name, version, "playground",
                             np.array([predicted]), np.array([0.9]), np.zeros((1, 64)))
                    )  # fmt: skip
                store.flush()
                for index, (_, _, _, label) in enumerate(rows):
                    store.label(ids[index], label, "playground")
                yield store.engine
            finally:
                store.close()

    return opened()


@cases.exercise(1)
def _only_the_newest_labels_of_one_version_count():
    """The newest `last` labels of one model name and version, by labelled_at."""
    import math

    rows = [("digits", "1", 3, 3)] * 20 + [("digits", "1", 3, 5)] * 10  # the newest 10: wrong
    rows += [("digits", "2", 4, 4)] * 5 + [("other", "1", 1, 2)] * 10
    with _lab09_store(rows) as engine:
        newest = live_accuracy(engine, "digits", "1", 10, 1)
        if newest != (10, 0.0):
            raise AssertionError(
                f"over the 10 newest labels of digits v1 (all wrong) you said {newest}, not "
                "(10, 0.0): order by labelled_at, newest first, before the limit"
            )
        every = live_accuracy(engine, "digits", "1", 100, 1)
        if every[0] != 30 or not math.isclose(every[1], 20 / 30):
            raise AssertionError(
                f"digits v1 has 30 labels, 20 right; you said {every}: only this model name "
                "and version count (another model has labels of version 1 too)"
            )
        if live_accuracy(engine, "digits", "2", 100, 1) != (5, 1.0):
            raise AssertionError("digits v2 has 5 labels, all right: (5, 1.0)")


@cases.exercise(1)
def _no_accuracy_below_the_minimum_and_plain_types():
    """NaN below the minimum (the count still returned), an int and a float."""
    import math

    rows = [("digits", "1", 7, 7)] * 4 + [("digits", "1", 7, 1)]
    with _lab09_store(rows) as engine:
        count, accuracy = live_accuracy(engine, "digits", "1", 200, 6)
        if count != 5 or not (isinstance(accuracy, float) and math.isnan(accuracy)):
            raise AssertionError(
                f"5 labels under a minimum of 6: (5, nan), not {(count, accuracy)}"
            )
        count, accuracy = live_accuracy(engine, "digits", "1", 200, 5)
        if type(count) is not int or type(accuracy) is not float:
            raise AssertionError(
                f"return an int and a float, not {type(count).__name__} and "
                f"{type(accuracy).__name__}"
            )
        if (count, accuracy) != (5, 0.8):
            raise AssertionError(f"5 labels, 4 right, minimum 5: (5, 0.8), not {(count, accuracy)}")
        nothing = live_accuracy(engine, "digits", "9", 200, 1)
        if nothing[0] != 0 or not math.isnan(nothing[1]):
            raise AssertionError(f"a version without labels: (0, nan), not {nothing}")


@cases.helper
def _lab09_batch(predicted, label):
    """A batch of labels: the model's digits and the source's, with a column the rule ignores."""
    import pandas as pd

    return pd.DataFrame(
        {"id": [f"p-{i}" for i in range(len(label))], "predicted": predicted, "label": label}
    )


@cases.exercise(2)
def _honest_batches_pass_and_pranks_are_refused_for_each_reason():
    """Each rule alone, both together, and an honest batch."""
    import numpy as np

    digits = np.arange(50) % 10
    honest = _lab09_batch(digits, np.where(np.arange(50) % 5 == 0, (digits + 1) % 10, digits))
    if refuse_batch(honest, 0.5, 0.4, 20) != []:
        raise AssertionError("a batch spread over every digit, 20% disagreeing: refuse nothing")
    prank = _lab09_batch(digits, np.full(50, 7))
    reasons = refuse_batch(prank, 0.5, 0.4, 20)
    if len(reasons) != 2 or "disagree" not in reasons[0] or "one digit" not in reasons[1]:
        raise AssertionError(
            f"every label 7, the model 10% in agreement: two reasons, disagreement first, "
            f"then one digit; you gave {reasons}"
        )
    if "90%" not in reasons[0] or "7" not in reasons[1] or "100%" not in reasons[1]:
        raise AssertionError(f"say the shares as percentages and name the digit: {reasons}")
    shuffled = _lab09_batch(digits, (digits + 3) % 10)
    alone = refuse_batch(shuffled, 0.5, 0.4, 20)
    if len(alone) != 1 or "disagree" not in alone[0]:
        raise AssertionError(f"every label wrong but spread over every digit: {alone}")
    skewed = _lab09_batch(np.full(50, 3), np.full(50, 3))
    alone = refuse_batch(skewed, 0.5, 0.4, 20)
    if len(alone) != 1 or "one digit" not in alone[0] or "3" not in alone[0]:
        raise AssertionError(f"every label 3, as the model said: one reason, one digit: {alone}")


@cases.exercise(2)
def _above_means_above_small_batches_pass_and_the_batch_is_untouched():
    """A share equal to its limit passes; under min_batch nothing is refused; batch unchanged."""
    import numpy as np
    import pandas as pd

    digits = np.arange(20) % 10
    half = _lab09_batch(digits, np.where(np.arange(20) < 10, digits, (digits + 1) % 10))
    if refuse_batch(half, 0.5, 0.4, 20) != []:
        raise AssertionError("exactly 50% disagreeing at a limit of 0.5 is not above it")
    fours = _lab09_batch(np.full(20, 4), np.where(np.arange(20) < 9, 4, digits))  # ten 4s
    if refuse_batch(fours, 0.9, 0.5, 20) != []:
        raise AssertionError("the most frequent label at 50%, a limit of 0.5: not above it")
    if refuse_batch(_lab09_batch(digits[:19], np.full(19, 7)), 0.5, 0.4, 20) != []:
        raise AssertionError("19 labels under a min_batch of 20: never refused")
    prank = _lab09_batch(digits, np.full(20, 7))
    before = prank.copy()
    refuse_batch(prank, 0.5, 0.4, 20)
    pd.testing.assert_frame_equal(prank, before, obj="the batch you were given")
