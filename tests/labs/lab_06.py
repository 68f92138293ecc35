"""Hidden cases of lab 06 (automated retraining), run by the grader in the learner's kernel.

Each case runs after the cells tagged setup, parameters and exercise-N, so the learner's
functions and the setup's names (`lab`, `params`, `first`, `weak`, `pin`, `record`, ...) exist.
A case works `with _lab06_scratch() as mine:`, the lab's settings with a registered model of its
own (`mine.model_name`, lab-06-grader-<random>) and a workspace in a temporary folder
(`mine.root`): versions made from the setup's logged models whose runs carry the lineage the
case needs (`_lab06_add_version`), and, when it trains, a copy of the lab's workspace
(`_lab06_workspace`). Afterwards that model goes, and so do the runs started meanwhile: the
lab's `lab-06-digits` and its aliases are left as they were. A case imports what it uses itself;
the grader sends its source, calls it and deletes its name, so the learner's names stay
untouched. It raises AssertionError with a plain message when the answer is wrong; a stub's
NotImplementedError passes through untouched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.grading import Cases

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd
    from mlflow.entities.model_registry import ModelVersion

    from app.config import Params, Settings
    from app.data.dvc import PinnedVersion

    # In the learner's kernel: the setup cell's names (solutions/06_automated_retraining.ipynb).
    lab: Settings = ...
    params: Params = ...
    first: ModelVersion = ...
    weak: ModelVersion = ...
    pin: Callable[[Settings, str], PinnedVersion] = ...
    record: Callable[[Settings, str], PinnedVersion] = ...
    # In the learner's kernel: the learner's functions (solutions/06_automated_retraining.ipynb).
    is_new_data: Callable[[Settings], bool] = ...
    judge: Callable[..., dict] = ...
    guarded_promotion: Callable[[Settings, Params, float], dict] = ...
    retraining_history: Callable[[Settings], pd.DataFrame] = ...
    rollback: Callable[[Settings], str] = ...

cases = Cases()


@cases.helper
def _lab06_scratch():
    """`with _lab06_scratch() as mine:` the lab's settings with a registered model of the case's own
    (`mine.model_name`, not made yet) and `mine.root` in an empty temporary folder. Afterwards
    the model goes, and so do the runs started in the lab's experiment meanwhile."""
    import contextlib
    import tempfile
    import time
    import uuid
    from pathlib import Path

    from mlflow.tracking import MlflowClient

    @contextlib.contextmanager
    def scratch():
        with tempfile.TemporaryDirectory() as folder:
            name = f"lab-06-grader-{uuid.uuid4().hex[:8]}"
            mine = lab.model_copy(update={"model_name": name, "root": Path(folder) / "repo"})
            started_ms = int(time.time() * 1000)
            try:
                yield mine
            finally:
                client = MlflowClient()
                if client.search_registered_models(f"name = '{name}'"):
                    client.delete_registered_model(name)
                for run in _lab06_new_runs(started_ms):
                    client.delete_run(run.info.run_id)

    return scratch()


@cases.helper
def _lab06_new_runs(since_ms):
    """The runs started in the lab's experiment since `since_ms` (Unix time, milliseconds)."""
    import mlflow
    from mlflow.tracking import MlflowClient

    experiment_id = mlflow.get_experiment_by_name(lab.experiment_name).experiment_id
    return MlflowClient().search_runs([experiment_id], f"attributes.start_time >= {since_ms}")


@cases.helper
def _lab06_v1_md5():
    """The md5 of the data that trained the lab's first champion (its run's data_md5 tag)."""
    from mlflow.tracking import MlflowClient

    return MlflowClient().get_run(first.run_id).data.tags["data_md5"]


@cases.helper
def _lab06_add_version(mine, tags, decision=None):
    """A version of `mine`'s model serving the setup's `first`, from a new run of the lab's
    experiment tagged `tags`, and tagged gate.decision `decision` if one is given."""
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    experiment_id = mlflow.get_experiment_by_name(lab.experiment_name).experiment_id
    run_id = client.create_run(experiment_id, tags=tags).info.run_id
    client.set_terminated(run_id)
    name = mine.model_name
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    model_id = first.source.removeprefix("models:/")
    version = client.create_model_version(name, first.source, run_id=run_id, model_id=model_id)
    if decision:
        client.set_model_version_tag(name, version.version, "gate.decision", decision)
    return version.version


@cases.helper
def _lab06_crown(mine, version):
    """Point @champion of `mine`'s model at `version`."""
    from mlflow.tracking import MlflowClient

    from app.registry import CHAMPION

    MlflowClient().set_registered_model_alias(mine.model_name, CHAMPION, version)


@cases.helper
def _lab06_champion_now(mine):
    """The version @champion of `mine`'s model points at; None without one."""
    from app.registry import CHAMPION, version_by_alias

    found = version_by_alias(mine, CHAMPION)
    return found.version if found else None


@cases.helper
def _lab06_versions_now(mine):
    """The version numbers of `mine`'s model, as ints, in order."""
    from mlflow.tracking import MlflowClient

    found = MlflowClient().search_model_versions(f"name = '{mine.model_name}'")
    return sorted(int(v.version) for v in found)


@cases.helper
def _lab06_write_pin(mine, md5, version):
    """A data.dvc in mine.root that pins `md5` under the name `version` (no data/ needed)."""
    import yaml

    from app.data.dvc import write_version_meta

    mine.root.mkdir(parents=True, exist_ok=True)
    spec = yaml.safe_load(lab.dvc_file.read_text())
    spec["outs"][0]["md5"] = md5
    mine.dvc_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    write_version_meta(mine.dvc_file, version)


@cases.helper
def _lab06_workspace(mine, version):
    """A copy of the lab's DVC workspace in mine.root, its data.dvc pinning data `version`."""
    import shutil

    from app.data import read_pin

    shutil.copytree(lab.root, mine.root, symlinks=True)
    if read_pin(mine.dvc_file).version != version:
        pin(mine, version)


@cases.exercise(1)
def _the_md5_decides_not_the_name():
    """The md5 decides, not the name: v1 renamed is not new, other data named v1 is."""
    v1_md5 = _lab06_v1_md5()
    with _lab06_scratch() as mine:
        _lab06_crown(mine, _lab06_add_version(mine, {"data_version": "v1", "data_md5": v1_md5}))
        _lab06_write_pin(mine, v1_md5, "v1-renamed")
        if is_new_data(mine) is not False:
            raise AssertionError(
                "data.dvc pins the champion's md5 under another name (v1-renamed): that is the "
                "same data, not new; compare md5s, not names"
            )
        _lab06_write_pin(mine, "0123456789abcdef0123456789abcdef.dir", "v1")
        if is_new_data(mine) is not True:
            raise AssertionError(
                "data.dvc is still named v1 but pins another md5: that is new data; compare the "
                "pin's md5 with the champion run's data_md5 tag"
            )


@cases.exercise(1)
def _no_champion_or_no_md5_means_new_data():
    """No model, a version without the alias, a champion whose run has no data_md5: all new."""
    v1_md5 = _lab06_v1_md5()
    with _lab06_scratch() as mine:
        _lab06_write_pin(mine, v1_md5, "v1")
        try:
            answer = is_new_data(mine)
        except NotImplementedError:
            raise
        except Exception as error:
            raise AssertionError(
                f"with no registered model at all, is_new_data raised {error!r}: return True"
            ) from None
        if answer is not True:
            raise AssertionError("a model that does not exist has no champion: the data is new")
        plain = _lab06_add_version(mine, {"data_version": "v1", "data_md5": v1_md5})
        if is_new_data(mine) is not True:
            raise AssertionError(
                "a version trained on this data exists, but nothing is @champion: it is new"
            )
        _lab06_crown(mine, _lab06_add_version(mine, {"data_version": "v1"}))
        try:
            answer = is_new_data(mine)
        except KeyError as error:
            raise AssertionError(
                f"the champion's run has no data_md5 tag ({error}): return True, not a KeyError"
            ) from None
        if answer is not True:
            raise AssertionError("the champion's run has no data_md5 tag: nothing vouches, True")
        _lab06_crown(mine, plain)
        if is_new_data(mine) is not False:
            raise AssertionError("@champion now points at a version trained on this md5: False")


@cases.exercise(1)
def _reads_the_champion_not_the_newest_version():
    """It reads the champion, not the newest version nor any version."""
    v1_md5 = _lab06_v1_md5()
    with _lab06_scratch() as mine:
        other = "fedcba9876543210fedcba9876543210.dir"
        old = _lab06_add_version(mine, {"data_version": "v1", "data_md5": v1_md5})
        newer = _lab06_add_version(mine, {"data_version": "v9", "data_md5": other})
        _lab06_crown(mine, old)
        _lab06_write_pin(mine, other, "v9")
        if is_new_data(mine) is not True:
            raise AssertionError(
                f"a newer version (v{newer}) saw this md5, but the champion (v{old}) did not: "
                "the question is whether the champion was trained on it"
            )
        _lab06_crown(mine, newer)
        _lab06_write_pin(mine, v1_md5, "v1")
        if is_new_data(mine) is not True:
            raise AssertionError(f"@champion moved to v{newer}, trained on other data: v1 is new")
        _lab06_write_pin(mine, other, "v9")
        if is_new_data(mine) is not False:
            raise AssertionError(f"@champion v{newer} was trained on exactly this md5: False")


@cases.exercise(2)
def _without_a_champion_only_the_floor_counts():
    """Without a champion only the floor counts, and the margin does not matter."""
    from app.data import load_split
    from app.registry import accuracy_on

    with _lab06_scratch():
        X, y = load_split(lab.data_dir / "val")
        weak_uri = f"models:/{lab.model_name}/{weak.version}"
        first_uri = f"models:/{lab.model_name}/{first.version}"
        expected = accuracy_on(weak_uri, X, y)
        verdict = judge(weak_uri, None, X, y, 0.95, 0.0)
        if verdict["promote"] is not False:
            raise AssertionError(f"the weak model scores {expected:.4f}, below a floor of 0.95")
        if verdict["champion_accuracy"] is not None:
            raise AssertionError("with no champion, champion_accuracy should be None")
        if abs(verdict["challenger_accuracy"] - expected) > 1e-9:
            raise AssertionError(
                f"challenger_accuracy is {verdict['challenger_accuracy']}, not {expected}"
            )
        reasons = verdict["reasons"]
        if len(reasons) != 1 or "floor" not in reasons[0] or f"{expected:.4f}" not in reasons[0]:
            raise AssertionError(
                f"one reason, naming the floor and the accuracy {expected:.4f}: {reasons}"
            )
        alone = judge(first_uri, None, X, y, 0.95, 0.5)
        if alone["promote"] is not True or alone["reasons"] != []:
            raise AssertionError(
                f"with no champion the margin does not apply: the first model passes ({alone})"
            )


@cases.exercise(2)
def _scores_both_models_on_the_digits_given():
    """Both are scored on the digits given: here, those one model gets right and the other not."""
    import mlflow

    from app.data import load_split

    with _lab06_scratch():
        X, y = load_split(lab.data_dir / "val")
        weak_uri = f"models:/{lab.model_name}/{weak.version}"
        first_uri = f"models:/{lab.model_name}/{first.version}"
        good = mlflow.pyfunc.load_model(first_uri).predict(X)["digit"].to_numpy() == y
        bad = mlflow.pyfunc.load_model(weak_uri).predict(X)["digit"].to_numpy() != y
        rows = good & bad
        X, y = X[rows], y[rows]
        verdict = judge(first_uri, weak_uri, X, y, 0.99, 0.0)
        scores = (verdict["challenger_accuracy"], verdict["champion_accuracy"])
        if scores != (1.0, 0.0):
            raise AssertionError(
                f"on {len(y)} digits the first model gets right and the weak one wrong, the "
                f"accuracies are 1.0 and 0.0, not {scores}: score the features and labels given"
            )
        if verdict["promote"] is not True or verdict["reasons"] != []:
            raise AssertionError(f"1.0 against 0.0 clears every rule: {verdict}")
        swapped = judge(weak_uri, first_uri, X, y, 0.5, 0.0)
        reasons = swapped["reasons"]
        if swapped["promote"] is not False or len(reasons) != 2:
            raise AssertionError(f"0.0 fails the floor and the champion, two reasons: {reasons}")
        if not ("floor" in reasons[0] and "champion" in reasons[1]):
            raise AssertionError(f"the floor's reason first, then the champion's: {reasons}")


@cases.exercise(2)
def _the_margin_asks_for_more_or_tolerates_a_loss():
    """The margin: positive asks for more, negative tolerates a loss; the floor stays."""
    from app.data import load_split
    from app.registry import accuracy_on

    with _lab06_scratch():
        X, y = load_split(lab.data_dir / "val")
        weak_uri = f"models:/{lab.model_name}/{weak.version}"
        first_uri = f"models:/{lab.model_name}/{first.version}"
        low, high = accuracy_on(weak_uri, X, y), accuracy_on(first_uri, X, y)
        gap = high - low
        tolerated = judge(weak_uri, first_uri, X, y, 0.9, -gap - 0.005)
        if tolerated["promote"] is not True:
            raise AssertionError(
                f"{low:.4f} against {high:.4f} with a margin of {-gap - 0.005:+.4f} passes: "
                f"a negative margin tolerates a loss ({tolerated['reasons']})"
            )
        short = judge(weak_uri, first_uri, X, y, 0.9, -gap + 0.005)
        if short["promote"] is not False or len(short["reasons"]) != 1:
            raise AssertionError(
                f"{low:.4f} is below {high:.4f} {-gap + 0.005:+.4f}: one reason, got {short}"
            )
        if "champion" not in short["reasons"][0] or "floor" in short["reasons"][0]:
            raise AssertionError(f"the reason should name the champion: {short['reasons']}")
        if judge(first_uri, weak_uri, X, y, 0.9, gap - 0.005)["promote"] is not True:
            raise AssertionError(f"{high:.4f} beats {low:.4f} by more than {gap - 0.005:.4f}")
        if judge(first_uri, weak_uri, X, y, 0.9, gap + 0.005)["promote"] is not False:
            raise AssertionError(f"{high:.4f} does not beat {low:.4f} by {gap + 0.005:.4f}")
        floored = judge(weak_uri, first_uri, X, y, 0.95, -gap - 0.005)
        if floored["promote"] is not False or len(floored["reasons"]) != 1:
            raise AssertionError(
                f"the margin tolerates {low:.4f}, the floor 0.95 does not: {floored['reasons']}"
            )
        if "floor" not in floored["reasons"][0]:
            raise AssertionError(f"the reason should name the floor: {floored['reasons']}")


@cases.exercise(3)
def _promotes_a_first_model_then_skips_old_data():
    """No champion yet: the first model is promoted; asked again, nothing new, nothing trains."""
    import time

    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    with _lab06_scratch() as mine:
        started_ms = int(time.time() * 1000)
        _lab06_workspace(mine, "v1")
        result = guarded_promotion(mine, params, 0.0)
        if result.get("decision") != "promoted":
            raise AssertionError(f"with no champion, a good v1 model is promoted: {result}")
        if result.get("data_version") != "v1" or _lab06_champion_now(mine) != result.get("version"):
            raise AssertionError(
                f"the record should name data v1 and the version now @champion: {result}"
            )
        tags = client.get_model_version(mine.model_name, result["version"]).tags
        if tags.get("gate.decision") != "promoted" or not tags.get("gate.reason"):
            raise AssertionError(f"tag the version gate.decision and gate.reason: {tags}")
        trained = len(_lab06_new_runs(started_ms))
        again = guarded_promotion(mine, params, 0.0)
        if again.get("decision") != "skipped" or again.get("version") is not None:
            raise AssertionError(f"v1 trained the champion now: skip it, got {again}")
        if not again.get("reasons"):
            raise AssertionError("a skipped retrain still says why, in reasons")
        if len(_lab06_new_runs(started_ms)) != trained or _lab06_versions_now(mine) != [1]:
            raise AssertionError("a skipped retrain must not train, log or register anything")


@cases.exercise(3)
def _fails_on_data_that_fails_validation():
    """Data that fails validation: failed, named, nothing registered, the champion untouched."""
    v1_md5 = _lab06_v1_md5()
    with _lab06_scratch() as mine:
        _lab06_crown(mine, _lab06_add_version(mine, {"data_version": "v1", "data_md5": v1_md5}))
        _lab06_workspace(mine, "v1")
        next((mine.data_dir / "val" / "5").glob("*.png")).write_bytes(b"\x89PNG, or not")
        record(mine, "v1-broken")
        try:
            result = guarded_promotion(mine, params, 0.0)
        except NotImplementedError:
            raise
        except Exception as error:
            raise AssertionError(
                f"guarded_promotion raised {type(error).__name__}: record it as failed instead"
            ) from None
        if result.get("decision") != "failed":
            raise AssertionError(f"a val image is unreadable: the decision is failed, {result}")
        reasons = result.get("reasons") or [""]
        if len(reasons) != 1 or not reasons[0].startswith("DataValidationError: "):
            raise AssertionError(f"one reason, '<ExceptionName>: <message>': {reasons}")
        if (
            _lab06_champion_now(mine) != "1"
            or _lab06_versions_now(mine) != [1]
            or result.get("version") is not None
        ):
            raise AssertionError("a failure must leave @champion and the registry as they were")


@cases.exercise(3)
def _fails_after_registering_rejects_then_promotes():
    """A failure after registering, a margin too high, then a promotion: @champion moves last."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    v1_md5 = _lab06_v1_md5()
    with _lab06_scratch() as mine:
        _lab06_crown(mine, _lab06_add_version(mine, {"data_version": "v1", "data_md5": v1_md5}))
        _lab06_workspace(mine, "v2")
        yours = globals()["judge"]

        def judge_that_fails(*args, **kwargs):
            raise RuntimeError("the val split went missing")

        globals()["judge"] = judge_that_fails
        try:
            result = guarded_promotion(mine, params, 0.0)
        finally:
            globals()["judge"] = yours
        if result.get("decision") != "failed" or _lab06_champion_now(mine) != "1":
            raise AssertionError(
                f"judge raised after the model was registered: failed, @champion kept ({result})"
            )
        if result.get("reasons") != ["RuntimeError: the val split went missing"]:
            raise AssertionError(f"the reason is '<ExceptionName>: <message>': {result}")
        registered = result.get("version")
        if registered is None or int(registered) not in _lab06_versions_now(mine):
            raise AssertionError(f"'version' is the version registered before it failed: {result}")
        if "gate.decision" in client.get_model_version(mine.model_name, registered).tags:
            raise AssertionError("the judge failed: the version should carry no gate.decision")
        high = guarded_promotion(mine, params, 0.05)
        if high.get("decision") != "rejected" or _lab06_champion_now(mine) != "1":
            raise AssertionError(f"the v2 model does not beat v1's by 0.05: rejected, {high}")
        tags = client.get_model_version(mine.model_name, high["version"]).tags
        if tags.get("gate.decision") != "rejected" or "champion" not in tags.get("gate.reason", ""):
            raise AssertionError(f"the refused version's tags should say why: {tags}")
        done = guarded_promotion(mine, params, 0.0)
        if done.get("decision") != "promoted" or _lab06_champion_now(mine) != done.get("version"):
            raise AssertionError(f"with no margin the v2 model is promoted: {done}")
        if done.get("data_version") != "v2" or done.get("reasons") != []:
            raise AssertionError(f"promoted: data v2, and no reasons, {done}")


@cases.exercise(4)
def _history_sorts_versions_and_fills_in_tags():
    """Ten versions: sorted as numbers, tags read, missing ones filled in, one champion."""
    with _lab06_scratch() as mine:
        decisions = {1: "promoted", 3: "promoted", 5: None, 9: "promoted", 10: None}
        rows = []
        for number in range(1, 11):
            decision = decisions.get(number, "rejected")
            data = None if number == 4 else f"v{number}"
            _lab06_add_version(mine, {"data_version": data} if data else {}, decision)
            rows.append((number, data or "unknown", decision or "not judged", number == 9))
        _lab06_crown(mine, "9")
        history = retraining_history(mine)
        if list(history.columns) != ["version", "data_version", "decision", "champion"]:
            raise AssertionError(f"the columns: {list(history.columns)}")
        got = list(history.itertuples(index=False, name=None))
        if [row[0] for row in got] != list(range(1, 11)):
            raise AssertionError(
                f"versions 1 to 10, oldest first, as int (10 after 9): {[r[0] for r in got]}"
            )
        for want, have in zip(rows, got, strict=True):
            if tuple(have) != want:
                raise AssertionError(f"version {want[0]}: expected {want}, got {tuple(have)}")
        if history["champion"].dtype != bool:
            raise AssertionError(f"champion is a bool column, not {history['champion'].dtype}")


@cases.exercise(4)
def _history_of_no_versions_or_no_champion():
    """No such model: empty, with the columns; versions but no champion: all False."""
    with _lab06_scratch() as mine:
        try:
            empty = retraining_history(mine)
        except NotImplementedError:
            raise
        except Exception as error:
            raise AssertionError(
                f"a model with no versions raised {type(error).__name__}: return an empty frame"
            ) from None
        columns = ["version", "data_version", "decision", "champion"]
        if not empty.empty or list(empty.columns) != columns:
            raise AssertionError(f"no versions: an empty frame with the four columns, got {empty}")
        for _ in range(3):
            _lab06_add_version(mine, {"data_version": "v1"}, "promoted")
        history = retraining_history(mine)
        if history["champion"].tolist() != [False, False, False]:
            raise AssertionError("no alias @champion: every version has champion False")


@cases.exercise(4)
def _rolls_back_to_older_promoted_versions():
    """Rollback goes to the newest promoted version older than the champion, by number."""
    with _lab06_scratch() as mine:
        decisions = {1: "promoted", 2: "promoted", 9: "promoted", 11: "promoted", 12: "promoted"}
        for number in range(1, 13):
            _lab06_add_version(
                mine, {"data_version": f"v{number}"}, decisions.get(number, "rejected")
            )
        _lab06_crown(mine, "11")
        steps = []
        for _ in range(3):
            steps.append(rollback(mine))
            if _lab06_champion_now(mine) != steps[-1]:
                raise AssertionError(
                    f"rollback said {steps[-1]}, @champion is {_lab06_champion_now(mine)}"
                )
        if steps != ["9", "2", "1"]:
            raise AssertionError(
                f"from 11, rolling back thrice goes to 9, 2, 1 (promoted, older, compared as "
                f"numbers; 12 is newer), not {steps}"
            )
        try:
            rollback(mine)
        except ValueError:
            pass
        else:
            raise AssertionError("nothing older than v1 was promoted: raise ValueError")
        if _lab06_champion_now(mine) != "1":
            raise AssertionError(
                f"a refused rollback moved @champion to {_lab06_champion_now(mine)}"
            )


@cases.exercise(4)
def _refuses_a_rollback_with_nowhere_to_go():
    """No champion, or only refused versions before it: ValueError, and nothing moves."""
    with _lab06_scratch() as mine:
        _lab06_add_version(mine, {"data_version": "v1"}, "rejected")
        _lab06_add_version(mine, {"data_version": "v2"}, None)
        _lab06_add_version(mine, {"data_version": "v3"}, "promoted")
        try:
            rollback(mine)
        except ValueError:
            pass
        else:
            raise AssertionError("there is no @champion to roll back from: raise ValueError")
        _lab06_crown(mine, "3")
        try:
            rollback(mine)
        except ValueError:
            pass
        else:
            raise AssertionError("v1 was refused and v2 never judged: raise ValueError")
        if _lab06_champion_now(mine) != "3":
            raise AssertionError(
                f"a refused rollback moved @champion to v{_lab06_champion_now(mine)}"
            )
