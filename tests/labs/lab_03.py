"""Hidden cases of lab 03 (model registry), run by the grader in the learner's kernel.

Each snippet runs after the cells tagged setup, parameters and exercise-N, so the learner's
functions and the setup's names (`runs`, `pin`, `X_val`, `y_val`, `params`) exist. Each builds its
own case in a throwaway registered model `name` (versions pointing at the setup's logged models,
which registering does not copy) and deletes it afterwards, so the lab's `lab-03-digits` and the
course's `digits-classifier` are left as they were. It runs inside a function, so the learner's
names stay untouched, and raises AssertionError in plain words when the answer is wrong; a stub's
NotImplementedError passes through untouched.
"""

from __future__ import annotations

from textwrap import dedent, indent

# What every case can use. Comments, not docstrings: a case is itself a string.
PRELUDE = """
import uuid

import mlflow
import numpy as np
from mlflow.tracking import MlflowClient

from app import registry

client = MlflowClient()
name = f"lab-03-grader-{uuid.uuid4().hex[:8]}"  # this case's own registered model


def add_version(key):
    # one more version of `name`, pointing at the model the setup's run `key` logged
    registry.create_registered_model(client, name)
    run = runs[key]
    model_id = run.model_uri.removeprefix("models:/")
    made = client.create_model_version(name, run.model_uri, run_id=run.run_id, model_id=model_id)
    return made.version


def set_aliases(**aliases):
    for alias, version in aliases.items():
        client.set_registered_model_alias(name, alias, version)


def alias_map():
    return dict(client.get_registered_model(name).aliases)


def listed():
    # the version numbers of `name`, in numeric order
    found = client.search_model_versions(f"name = '{name}'")
    return sorted((v.version for v in found), key=int)


def drop():
    if client.search_registered_models(filter_string=f"name = '{name}'"):
        client.delete_registered_model(name)
"""


def case(body: str, *extras: str) -> str:
    """One snippet: `body` runs with PRELUDE's names (and extras'), in a function, in a `try`
    whose `finally` deletes the case's registered model `name`."""
    inner = (
        "".join(dedent(text) for text in (PRELUDE, *extras))
        + "\ntry:\n"
        + indent(dedent(body).strip("\n") + "\n", "    ")
        + "finally:\n    drop()\n"
    )
    return f"def _lab03_case():\n{indent(inner, '    ')}\n\n_lab03_case()\n"


# What the gate's cases can use: each model's answers, scored here, and the verdict they imply.
GATE = """
answers = {}


def correct(key, features, labels):
    # which of the images the setup's model `key` gets right (loaded once per case)
    if key not in answers:
        answers[key] = mlflow.pyfunc.load_model(runs[key].model_uri)
    return answers[key].predict(features)["digit"].to_numpy() == labels


def verdict(challenger, champion, features, labels, margin, tolerance):
    # (accuracy short of the margin?, the digits whose recall fell by more than tolerance)
    new, old = correct(challenger, features, labels), correct(champion, features, labels)
    fell = [
        int(d) for d in np.unique(labels)
        if new[labels == d].mean() < old[labels == d].mean() - tolerance
    ]
    return bool(new.mean() < old.mean() + margin), fell


def judge(result, short, fell, what):
    # compare the learner's (ok, reasons) with the verdict, in plain words
    ok, reasons = result
    assert isinstance(reasons, list) and all(isinstance(r, str) for r in reasons), (
        f"{what}: the reasons should be a list of sentences (str), not {reasons!r}"
    )
    expected = not short and not fell
    assert ok == expected, (
        f"{what}: the gate should answer {expected}, but answered {ok} ({reasons})"
    )
    named = [d for d in range(10) if any(f"digit {d}" in r for r in reasons)]
    assert named == fell, (
        f"{what}: the digits whose recall fell by more than the tolerance are {fell}, "
        f"but your reasons name {named}: {reasons}"
    )
    about_accuracy = [r for r in reasons if "accuracy" in r]
    gains = "falls short of" if short else "gains"
    assert len(about_accuracy) == int(short), (
        f"{what}: the accuracy {gains} the margin, but your reasons say {reasons}"
    )
    assert len(reasons) == int(short) + len(fell), (
        f"{what}: expected one reason per broken rule ({int(short) + len(fell)}), not {reasons}"
    )
    if short and fell:
        assert "accuracy" in reasons[0], f"{what}: the accuracy's reason comes first: {reasons}"
"""


EXERCISES: dict[int, list[str]] = {
    # register_run(run_id, name) -> the new version's number, tagged from the run
    1: [
        case("""
            assert not client.search_registered_models(filter_string=f"name = '{name}'"), name
            first = register_run(runs["cnn-3"].run_id, name)
            assert isinstance(first, str), f"return the version number as a str, not {first!r}"
            assert first == "1", (
                f"a registered model that did not exist gets version '1' first, not {first!r}"
            )
            second = register_run(runs["baseline"].run_id, name)
            assert second == "2", f"the second registration should be version '2', not {second!r}"
            for version, key in [("1", "cnn-3"), ("2", "baseline")]:
                run = runs[key]
                got = client.get_model_version(name, version)
                assert got.source == run.model_uri, (
                    f"version {version} should point at the model its run logged, "
                    f"{run.model_uri}, not {got.source}"
                )
                expected = {
                    "data_version": pin.version,
                    "family": run.family,
                    "val_accuracy": f"{run.metrics['val_accuracy']:.4f}",
                }
                wrong = {k: got.tags.get(k) for k, v in expected.items() if got.tags.get(k) != v}
                assert not wrong, f"version {version} ({key}) should carry {expected}, not {wrong}"
        """),
        case("""
            # A run whose records differ from the setup's: the tags come from the run given.
            experiment = client.create_experiment(f"lab-03-grader-{uuid.uuid4().hex[:8]}")
            try:
                run_id = client.create_run(experiment).info.run_id
                client.set_tag(run_id, "model_uri", runs["cnn-6"].model_uri)
                client.set_tag(run_id, "data_version", "v7")
                client.log_param(run_id, "family", "cnn")
                client.log_metric(run_id, "val_accuracy", 0.123456)
                client.set_terminated(run_id)
                versions = [register_run(run_id, name), register_run(run_id, name)]
                assert versions == ["1", "2"], (
                    f"registering one run twice makes two versions, '1' and '2', not {versions}"
                )
                expected = {"data_version": "v7", "family": "cnn", "val_accuracy": "0.1235"}
                for version in versions:
                    tags = client.get_model_version(name, version).tags
                    wrong = {k: tags.get(k) for k, v in expected.items() if tags.get(k) != v}
                    assert not wrong, (
                        "a run tagged data_version v7, with the param family cnn and the metric "
                        f"val_accuracy 0.123456, should give the tags {expected}; "
                        f"version {version} has {wrong}"
                    )
            finally:
                client.delete_experiment(experiment)
        """),
        case("""
            experiment = client.create_experiment(f"lab-03-grader-{uuid.uuid4().hex[:8]}")
            try:
                run_id = client.create_run(experiment).info.run_id
                client.set_tag(run_id, "data_version", "v1")
                client.log_param(run_id, "family", "baseline")
                client.log_metric(run_id, "val_accuracy", 0.9)
                client.set_terminated(run_id)
                try:
                    got = register_run(run_id, name)
                except ValueError:
                    pass
                except NotImplementedError:
                    raise
                except Exception as error:
                    raise AssertionError(
                        "a run without a model_uri tag should raise ValueError, not "
                        f"{type(error).__name__}: {error}"
                    ) from None
                else:
                    raise AssertionError(
                        f"this run logged no model (no model_uri tag), yet you returned {got!r}: "
                        "raise ValueError"
                    )
                assert listed() == [], (
                    f"a run without a model should register nothing, but {name} has {listed()}"
                )
            finally:
                client.delete_experiment(experiment)
        """),
    ],
    # promote(name, version), rollback(name) -> the version champion again
    2: [
        case("""
            one, two, three = (add_version("baseline") for _ in range(3))
            promote(name, one)
            assert alias_map() == {"champion": one}, (
                f"the first promotion (no champion before) should only set champion: {alias_map()}"
            )
            promote(name, two)
            promote(name, three)
            assert alias_map() == {"champion": three, "previous": two}, (
                f"after promoting versions 1, 2 and 3: champion 3, previous 2, not {alias_map()}"
            )
            back = rollback(name)
            assert back == two, f"rollback should return '2', the champion now, not {back!r}"
            assert alias_map() == {"champion": two}, (
                f"after the rollback: champion 2 and no previous, not {alias_map()}"
            )
            try:
                again = rollback(name)
            except LookupError:
                pass
            else:
                raise AssertionError(
                    f"a second rollback has no previous to go back to: raise LookupError, "
                    f"not return {again!r}"
                )
            assert alias_map() == {"champion": two}, (
                f"a rollback that fails should change nothing, but the aliases are {alias_map()}"
            )
        """),
        case("""
            one, two, three = (add_version("cnn-6") for _ in range(3))
            set_aliases(challenger=three)
            promote(name, one)
            promote(name, two)
            promote(name, two)  # the champion again: nothing changes
            expected = {"champion": two, "previous": one, "challenger": three}
            assert alias_map() == expected, (
                "promoting the champion again must leave previous where it was (1), and "
                f"challenger untouched: expected {expected}, got {alias_map()}"
            )
            back = rollback(name)
            assert (back, alias_map()) == (one, {"champion": one, "challenger": three}), (
                "rolling back from 2 to 1 should leave champion 1 and the challenger alone; "
                f"got {back!r} and {alias_map()}"
            )
        """),
        case("""
            only = add_version("baseline")
            try:
                got = rollback(name)
            except LookupError:
                pass
            else:
                raise AssertionError(
                    f"with no alias at all there is nothing to roll back to: raise LookupError, "
                    f"not return {got!r}"
                )
            assert alias_map() == {}, f"a failed rollback set aliases: {alias_map()}"
            set_aliases(previous=only)  # the champion alias was deleted by hand
            back = rollback(name)
            assert (back, alias_map()) == (only, {"champion": only}), (
                f"with only previous -> {only}, rollback should make it champion and drop "
                f"previous; got {back!r} and {alias_map()}"
            )
        """),
    ],
    # gate(name, features, labels, margin, tolerance) -> (ok, reasons)
    3: [
        case(
            """
            set_aliases(champion=add_version("baseline"), challenger=add_version("cnn-3"))
            for margin, tolerance in [(0.005, 0.05), (0.0, 0.02), (0.02, 0.1), (0.0, 0.0)]:
                short, fell = verdict("cnn-3", "baseline", X_val, y_val, margin, tolerance)
                result = gate(name, X_val, y_val, margin, tolerance)
                judge(
                    result,
                    short,
                    fell,
                    f"3-epoch CNN against the baseline, margin {margin}, tolerance {tolerance}",
                )
        """,
            GATE,
        ),
        case(
            """
            both = add_version("cnn-6")
            set_aliases(champion=both, challenger=both)
            result = gate(name, X_val, y_val, 0.0, 0.0)
            assert tuple(result) == (True, []), (
                f"a challenger that is the champion ties it: with margin 0 it passes, not {result}"
            )
            ok, reasons = gate(name, X_val, y_val, 0.01, 0.0)
            assert not ok, (
                "the same model gains nothing: with margin 0.01 the gate must refuse it"
            )
            assert len(reasons) == 1 and "accuracy" in reasons[0], (
                f"the same model: one reason, about the accuracy, not {reasons}"
            )
            client.delete_registered_model_alias(name, "champion")
            result = gate(name, X_val, y_val, 0.5, 0.0)
            assert tuple(result) == (True, []), (
                f"with no champion the challenger has nothing to beat: (True, []), not {result}"
            )
        """,
            GATE,
        ),
        case(
            """
            from app.data import shifted_batch

            shifted = shifted_batch(params.data)
            images, labels = shifted.images.astype(np.float32), shifted.labels
            set_aliases(champion=add_version("cnn-3"), challenger=add_version("cnn-6"))
            short, fell = verdict("cnn-6", "cnn-3", images, labels, 0.0, 0.1)
            judge(
                gate(name, images, labels, 0.0, 0.1),
                short,
                fell,
                "6-epoch against 3-epoch CNN on monitoring's shifted digits (not the val split: "
                "score the models on the images given, do not read logged metrics)",
            )
            low = y_val < 5
            set_aliases(champion=add_version("baseline"), challenger=add_version("cnn-3"))
            short, fell = verdict("cnn-3", "baseline", X_val[low], y_val[low], 0.0, 0.0)
            judge(
                gate(name, X_val[low], y_val[low], 0.0, 0.0),
                short,
                fell,
                "on the val images of digits 0 to 4 only (digits 5 to 9 are not judged)",
            )
        """,
            GATE,
        ),
    ],
    # cleanup(name, keep) -> the versions deleted, in numeric order
    4: [
        case("""
            made = [add_version("baseline") for _ in range(12)]
            set_aliases(champion="10", challenger="10", previous="3")
            before = alias_map()
            deleted = cleanup(name, 2)
            expected = ["1", "2", "4", "5", "6", "7", "8", "9"]
            assert list(deleted) == expected, (
                "12 versions, aliases on 3 and 10, keep=2: the newest spare ones are 12 and 11 "
                f"(numbers, not strings: '9' < '10'), so delete {expected}, not {deleted}"
            )
            assert listed() == ["3", "10", "11", "12"], (
                f"after cleanup(keep=2) the registry should hold 3, 10, 11, 12, not {listed()}"
            )
            assert alias_map() == before, f"cleanup moved aliases: {alias_map()}, not {before}"
        """),
        case("""
            made = [add_version("cnn-3") for _ in range(12)]
            set_aliases(champion="11", previous="3")
            deleted = cleanup(name, 0)
            expected = [v for v in made if v not in ("3", "11")]
            assert list(deleted) == expected, (
                "keep=0 deletes every version without an alias, listed in numeric order: "
                f"{expected}, not {deleted}"
            )
            assert listed() == ["3", "11"], f"only 3 and 11 have aliases, yet {listed()} remain"
        """),
        case("""
            made = [add_version("baseline") for _ in range(4)]
            set_aliases(champion="2")
            try:
                got = cleanup(name, -1)
            except ValueError:
                pass
            else:
                raise AssertionError(f"keep=-1 makes no sense: raise ValueError, not {got!r}")
            assert listed() == made, f"a refused cleanup deleted versions: {listed()} are left"
            got = cleanup(name, 50)
            assert list(got) == [] and listed() == made, (
                f"keep=50 with 3 spare versions deletes nothing: you deleted {got}"
            )
            set_aliases(champion="1", previous="2", challenger="3", newest="4")
            got = cleanup(name, 0)
            assert list(got) == [] and listed() == made, (
                f"every version has an alias: nothing may go, but you deleted {got}"
            )
        """),
    ],
}
