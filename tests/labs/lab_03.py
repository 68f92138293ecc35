"""Hidden cases of lab 03 (model registry), run by the grader in the learner's kernel.

Each case runs after the cells tagged setup, parameters and exercise-N, so the learner's
functions and the setup's names (`runs`, `pin`, `X_val`, `y_val`, `params`) exist. Each builds
its own case in a throwaway registered model, `with _lab03_throwaway_model() as name:` (versions
pointing at the setup's logged models, which registering does not copy), deleted afterwards, so
the lab's `lab-03-digits` and the course's `digits-classifier` are left as they were. It imports
what it uses itself; the grader sends its source, calls it and deletes its name, so the
learner's names stay untouched. It raises AssertionError in plain words when the answer is
wrong; a stub's NotImplementedError passes through untouched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.grading import Cases

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np

    from app.config import Params
    from app.data.dvc import PinnedVersion
    from app.training.tracking import LoggedRun

    # In the learner's kernel: the setup cell's names (solutions/03_model_registry.ipynb).
    runs: dict[str, LoggedRun] = ...
    pin: PinnedVersion = ...
    X_val: np.ndarray = ...
    y_val: np.ndarray = ...
    params: Params = ...
    # In the learner's kernel: the learner's functions (solutions/03_model_registry.ipynb).
    register_run: Callable[[str, str], str] = ...
    promote: Callable[[str, str], None] = ...
    rollback: Callable[[str], str] = ...
    gate: Callable[[str, np.ndarray, np.ndarray, float, float], tuple[bool, list[str]]] = ...
    cleanup: Callable[[str, int], list[str]] = ...

cases = Cases()


@cases.helper
def _lab03_throwaway_model():
    """`with _lab03_throwaway_model() as name:` a registered model name of the case's own (not made
    yet), the model deleted afterwards with its versions if the case made it."""
    import contextlib
    import uuid

    from mlflow.tracking import MlflowClient

    @contextlib.contextmanager
    def model():
        name = f"lab-03-grader-{uuid.uuid4().hex[:8]}"
        try:
            yield name
        finally:
            client = MlflowClient()
            if client.search_registered_models(filter_string=f"name = '{name}'"):
                client.delete_registered_model(name)

    return model()


@cases.helper
def _lab03_add_version(name, key):
    """One more version of `name`, pointing at the model the setup's run `key` logged."""
    from mlflow.tracking import MlflowClient

    from app import registry

    client = MlflowClient()
    registry.create_registered_model(client, name)
    run = runs[key]
    model_id = run.model_uri.removeprefix("models:/")
    made = client.create_model_version(name, run.model_uri, run_id=run.run_id, model_id=model_id)
    return made.version


@cases.helper
def _lab03_set_aliases(name, **aliases):
    """Point each alias of `name` at its version: `_lab03_set_aliases(name, champion="2")`."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    for alias, version in aliases.items():
        client.set_registered_model_alias(name, alias, version)


@cases.helper
def _lab03_alias_map(name):
    """Alias -> version of the registered model `name`."""
    from mlflow.tracking import MlflowClient

    return dict(MlflowClient().get_registered_model(name).aliases)


@cases.helper
def _lab03_listed(name):
    """The version numbers of `name`, in numeric order."""
    from mlflow.tracking import MlflowClient

    found = MlflowClient().search_model_versions(f"name = '{name}'")
    return sorted((v.version for v in found), key=int)


@cases.helper
def _lab03_correct(key, features, labels):
    """Which of the images the setup's model `key` gets right (for the gate's cases)."""
    import mlflow

    model = mlflow.pyfunc.load_model(runs[key].model_uri)
    return model.predict(features)["digit"].to_numpy() == labels


@cases.helper
def _lab03_verdict(new, old, labels, margin, tolerance):
    """(accuracy short of the margin?, the digits whose recall fell by more than tolerance),
    from which images the challenger (`new`) and the champion (`old`) get right."""
    import numpy as np

    fell = [
        int(d)
        for d in np.unique(labels)
        if new[labels == d].mean() < old[labels == d].mean() - tolerance
    ]
    return bool(new.mean() < old.mean() + margin), fell


@cases.helper
def _lab03_judge(result, short, fell, what):
    """Compare the learner's (ok, reasons) with the verdict, in plain words."""
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


# register_run(run_id, name) -> the new version's number, tagged from the run
@cases.exercise(1)
def _registers_two_runs_as_versions_1_and_2():
    """Two registrations of the setup's runs: versions '1' and '2', each tagged from its run."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    with _lab03_throwaway_model() as name:
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


@cases.exercise(1)
def _tags_come_from_the_run_given():
    """A run whose records differ from the setup's, registered twice: the tags come from it."""
    import uuid

    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    with _lab03_throwaway_model() as name:
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


@cases.exercise(1)
def _refuses_a_run_without_a_model():
    """A run that logged no model: ValueError, and nothing registered."""
    import uuid

    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    with _lab03_throwaway_model() as name:
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
            assert _lab03_listed(name) == [], (
                f"a run without a model should register nothing, but {name} has "
                f"{_lab03_listed(name)}"
            )
        finally:
            client.delete_experiment(experiment)


# promote(name, version), rollback(name) -> the version champion again
@cases.exercise(2)
def _promotes_thrice_then_rolls_back_once():
    """Promote versions 1, 2 and 3, roll back to 2; a second rollback has nowhere to go."""
    with _lab03_throwaway_model() as name:
        one, two, three = (_lab03_add_version(name, "baseline") for _ in range(3))
        promote(name, one)
        assert _lab03_alias_map(name) == {"champion": one}, (
            "the first promotion (no champion before) should only set champion: "
            f"{_lab03_alias_map(name)}"
        )
        promote(name, two)
        promote(name, three)
        assert _lab03_alias_map(name) == {"champion": three, "previous": two}, (
            "after promoting versions 1, 2 and 3: champion 3, previous 2, not "
            f"{_lab03_alias_map(name)}"
        )
        back = rollback(name)
        assert back == two, f"rollback should return '2', the champion now, not {back!r}"
        assert _lab03_alias_map(name) == {"champion": two}, (
            f"after the rollback: champion 2 and no previous, not {_lab03_alias_map(name)}"
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
        assert _lab03_alias_map(name) == {"champion": two}, (
            "a rollback that fails should change nothing, but the aliases are "
            f"{_lab03_alias_map(name)}"
        )


@cases.exercise(2)
def _promoting_the_champion_again_changes_nothing():
    """Promoting the champion again keeps previous; other aliases are left alone."""
    with _lab03_throwaway_model() as name:
        one, two, three = (_lab03_add_version(name, "cnn-6") for _ in range(3))
        _lab03_set_aliases(name, challenger=three)
        promote(name, one)
        promote(name, two)
        promote(name, two)  # the champion again: nothing changes
        expected = {"champion": two, "previous": one, "challenger": three}
        assert _lab03_alias_map(name) == expected, (
            "promoting the champion again must leave previous where it was (1), and "
            f"challenger untouched: expected {expected}, got {_lab03_alias_map(name)}"
        )
        back = rollback(name)
        assert (back, _lab03_alias_map(name)) == (one, {"champion": one, "challenger": three}), (
            "rolling back from 2 to 1 should leave champion 1 and the challenger alone; "
            f"got {back!r} and {_lab03_alias_map(name)}"
        )


@cases.exercise(2)
def _rolls_back_to_a_lone_previous():
    """No alias at all: LookupError; previous alone (champion deleted by hand): it wins."""
    with _lab03_throwaway_model() as name:
        only = _lab03_add_version(name, "baseline")
        try:
            got = rollback(name)
        except LookupError:
            pass
        else:
            raise AssertionError(
                f"with no alias at all there is nothing to roll back to: raise LookupError, "
                f"not return {got!r}"
            )
        assert _lab03_alias_map(name) == {}, (
            f"a failed rollback set aliases: {_lab03_alias_map(name)}"
        )
        _lab03_set_aliases(name, previous=only)  # the champion alias was deleted by hand
        back = rollback(name)
        assert (back, _lab03_alias_map(name)) == (only, {"champion": only}), (
            f"with only previous -> {only}, rollback should make it champion and drop "
            f"previous; got {back!r} and {_lab03_alias_map(name)}"
        )


# gate(name, features, labels, margin, tolerance) -> (ok, reasons)
@cases.exercise(3)
def _gates_the_3_epoch_cnn_against_the_baseline():
    """The 3-epoch CNN against the baseline, over margins and tolerances, on the val split."""
    with _lab03_throwaway_model() as name:
        _lab03_set_aliases(
            name,
            champion=_lab03_add_version(name, "baseline"),
            challenger=_lab03_add_version(name, "cnn-3"),
        )
        new, old = _lab03_correct("cnn-3", X_val, y_val), _lab03_correct("baseline", X_val, y_val)
        for margin, tolerance in [(0.005, 0.05), (0.0, 0.02), (0.02, 0.1), (0.0, 0.0)]:
            short, fell = _lab03_verdict(new, old, y_val, margin, tolerance)
            result = gate(name, X_val, y_val, margin, tolerance)
            _lab03_judge(
                result,
                short,
                fell,
                f"3-epoch CNN against the baseline, margin {margin}, tolerance {tolerance}",
            )


@cases.exercise(3)
def _gates_a_model_against_itself_and_no_champion():
    """The same model as champion and challenger ties; with no champion nothing to beat."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    with _lab03_throwaway_model() as name:
        both = _lab03_add_version(name, "cnn-6")
        _lab03_set_aliases(name, champion=both, challenger=both)
        result = gate(name, X_val, y_val, 0.0, 0.0)
        assert tuple(result) == (True, []), (
            f"a challenger that is the champion ties it: with margin 0 it passes, not {result}"
        )
        ok, reasons = gate(name, X_val, y_val, 0.01, 0.0)
        assert not ok, "the same model gains nothing: with margin 0.01 the gate must refuse it"
        assert len(reasons) == 1 and "accuracy" in reasons[0], (
            f"the same model: one reason, about the accuracy, not {reasons}"
        )
        client.delete_registered_model_alias(name, "champion")
        result = gate(name, X_val, y_val, 0.5, 0.0)
        assert tuple(result) == (True, []), (
            f"with no champion the challenger has nothing to beat: (True, []), not {result}"
        )


@cases.exercise(3)
def _gates_on_the_images_given():
    """Scored on the images given: monitoring's shifted digits, then digits 0 to 4 only."""
    import numpy as np

    from app.data import shifted_batch

    with _lab03_throwaway_model() as name:
        shifted = shifted_batch(params.data)
        images, labels = shifted.images.astype(np.float32), shifted.labels
        _lab03_set_aliases(
            name,
            champion=_lab03_add_version(name, "cnn-3"),
            challenger=_lab03_add_version(name, "cnn-6"),
        )
        new, old = _lab03_correct("cnn-6", images, labels), _lab03_correct("cnn-3", images, labels)
        short, fell = _lab03_verdict(new, old, labels, 0.0, 0.1)
        _lab03_judge(
            gate(name, images, labels, 0.0, 0.1),
            short,
            fell,
            "6-epoch against 3-epoch CNN on monitoring's shifted digits (not the val split: "
            "score the models on the images given, do not read logged metrics)",
        )
        low = y_val < 5
        _lab03_set_aliases(
            name,
            champion=_lab03_add_version(name, "baseline"),
            challenger=_lab03_add_version(name, "cnn-3"),
        )
        new = _lab03_correct("cnn-3", X_val[low], y_val[low])
        old = _lab03_correct("baseline", X_val[low], y_val[low])
        short, fell = _lab03_verdict(new, old, y_val[low], 0.0, 0.0)
        _lab03_judge(
            gate(name, X_val[low], y_val[low], 0.0, 0.0),
            short,
            fell,
            "on the val images of digits 0 to 4 only (digits 5 to 9 are not judged)",
        )


# cleanup(name, keep) -> the versions deleted, in numeric order
@cases.exercise(4)
def _keeps_aliases_and_the_newest_spare_versions():
    """12 versions, aliases on 3 and 10, keep=2: numeric order decides which go."""
    with _lab03_throwaway_model() as name:
        for _ in range(12):
            _lab03_add_version(name, "baseline")
        _lab03_set_aliases(name, champion="10", challenger="10", previous="3")
        before = _lab03_alias_map(name)
        deleted = cleanup(name, 2)
        expected = ["1", "2", "4", "5", "6", "7", "8", "9"]
        assert list(deleted) == expected, (
            "12 versions, aliases on 3 and 10, keep=2: the newest spare ones are 12 and 11 "
            f"(numbers, not strings: '9' < '10'), so delete {expected}, not {deleted}"
        )
        assert _lab03_listed(name) == ["3", "10", "11", "12"], (
            "after cleanup(keep=2) the registry should hold 3, 10, 11, 12, not "
            f"{_lab03_listed(name)}"
        )
        assert _lab03_alias_map(name) == before, (
            f"cleanup moved aliases: {_lab03_alias_map(name)}, not {before}"
        )


@cases.exercise(4)
def _keep_0_deletes_every_spare_version():
    """keep=0 deletes every version without an alias, in numeric order."""
    with _lab03_throwaway_model() as name:
        made = [_lab03_add_version(name, "cnn-3") for _ in range(12)]
        _lab03_set_aliases(name, champion="11", previous="3")
        deleted = cleanup(name, 0)
        expected = [v for v in made if v not in ("3", "11")]
        assert list(deleted) == expected, (
            "keep=0 deletes every version without an alias, listed in numeric order: "
            f"{expected}, not {deleted}"
        )
        assert _lab03_listed(name) == ["3", "11"], (
            f"only 3 and 11 have aliases, yet {_lab03_listed(name)} remain"
        )


@cases.exercise(4)
def _refuses_a_negative_keep_and_spares_aliases():
    """keep=-1 is refused; keep=50 and versions that all have aliases delete nothing."""
    with _lab03_throwaway_model() as name:
        made = [_lab03_add_version(name, "baseline") for _ in range(4)]
        _lab03_set_aliases(name, champion="2")
        try:
            got = cleanup(name, -1)
        except ValueError:
            pass
        else:
            raise AssertionError(f"keep=-1 makes no sense: raise ValueError, not {got!r}")
        assert _lab03_listed(name) == made, (
            f"a refused cleanup deleted versions: {_lab03_listed(name)} are left"
        )
        got = cleanup(name, 50)
        assert list(got) == [] and _lab03_listed(name) == made, (
            f"keep=50 with 3 spare versions deletes nothing: you deleted {got}"
        )
        _lab03_set_aliases(name, champion="1", previous="2", challenger="3", newest="4")
        got = cleanup(name, 0)
        assert list(got) == [] and _lab03_listed(name) == made, (
            f"every version has an alias: nothing may go, but you deleted {got}"
        )
