"""Hidden cases of lab 06 (automated retraining), run by the grader in the learner's kernel.

Each snippet runs after the cells tagged setup, parameters and exercise-N, so the learner's
functions and the setup's names (`lab`, `params`, `first`, `weak`, `pin`, `record`, ...) exist.
A case works on a registered model of its own (`lab-06-grader-<random>`), with versions made
from the setup's logged models whose runs carry the lineage the case needs, and, when it trains,
on a copy of the lab's workspace in a temporary folder. It deletes that model and the runs it
started afterwards: the lab's `lab-06-digits` and its aliases are left as they were. A case runs
inside a function, so the learner's names stay untouched, and raises AssertionError with a plain
message when the answer is wrong; a stub's NotImplementedError passes through untouched.
"""

from __future__ import annotations

from textwrap import dedent, indent

# What every case can use. Comments, not docstrings: a case is itself a string.
PRELUDE = """
import shutil
import time
import uuid

import mlflow
import yaml
from mlflow.tracking import MlflowClient

from app.data import load_split, read_pin
from app.data.dvc import write_version_meta
from app.registry import CHAMPION, accuracy_on, version_by_alias

client = MlflowClient()
experiment_id = mlflow.get_experiment_by_name(lab.experiment_name).experiment_id
name = f"lab-06-grader-{uuid.uuid4().hex[:8]}"
mine = lab.model_copy(update={"model_name": name, "root": root / "repo"})
v1_md5 = client.get_run(first.run_id).data.tags["data_md5"]  # what trained the lab's champion
started_ms = int(time.time() * 1000)


def add_version(tags, decision=None, model=first):
    # a version of `name` serving the setup's `model`, from a new run tagged `tags`
    run_id = client.create_run(experiment_id, tags=tags).info.run_id
    client.set_terminated(run_id)
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    model_id = model.source.removeprefix("models:/")
    version = client.create_model_version(name, model.source, run_id=run_id, model_id=model_id)
    if decision:
        client.set_model_version_tag(name, version.version, "gate.decision", decision)
    return version.version


def crown(version):
    client.set_registered_model_alias(name, CHAMPION, version)


def champion_now():
    found = version_by_alias(mine, CHAMPION)
    return found.version if found else None


def versions_now():
    return sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))


def write_pin(md5, version):
    # a data.dvc in mine.root that pins `md5` under the name `version` (no data/ needed)
    mine.root.mkdir(parents=True, exist_ok=True)
    spec = yaml.safe_load(lab.dvc_file.read_text())
    spec["outs"][0]["md5"] = md5
    mine.dvc_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    write_version_meta(mine.dvc_file, version)


def workspace(version):
    # a copy of the lab's DVC workspace in mine.root, its data.dvc pinning data `version`
    shutil.copytree(lab.root, mine.root, symlinks=True)
    if read_pin(mine.dvc_file).version != version:
        pin(mine, version)


def new_runs():
    # the runs started in the lab's experiment since the case began
    return client.search_runs([experiment_id], f"attributes.start_time >= {started_ms}")


def cleanup():
    if client.search_registered_models(f"name = '{name}'"):
        client.delete_registered_model(name)
    for run in new_runs():
        client.delete_run(run.info.run_id)
"""


def case(body: str) -> str:
    """One snippet: `body` runs with PRELUDE's names and a temporary folder `root`, in a
    function, and whatever it registered or started is deleted afterwards."""
    inner = (
        "import tempfile\nfrom pathlib import Path\n\n"
        "with tempfile.TemporaryDirectory() as folder:\n    root = Path(folder)\n"
        + indent(dedent(PRELUDE), "    ")
        + "    try:\n"
        + indent(dedent(body), "        ")
        + "    finally:\n        cleanup()\n"
    )
    return f"def _lab06_case():\n{indent(inner, '    ')}\n\n_lab06_case()\n"


EXERCISES: dict[int, list[str]] = {
    1: [
        # The md5 decides, not the name: v1 renamed is not new, other data named v1 is.
        case("""
        crown(add_version({"data_version": "v1", "data_md5": v1_md5}))
        write_pin(v1_md5, "v1-renamed")
        if is_new_data(mine) is not False:
            raise AssertionError(
                "data.dvc pins the champion's md5 under another name (v1-renamed): that is the "
                "same data, not new; compare md5s, not names"
            )
        write_pin("0123456789abcdef0123456789abcdef.dir", "v1")
        if is_new_data(mine) is not True:
            raise AssertionError(
                "data.dvc is still named v1 but pins another md5: that is new data; compare the "
                "pin's md5 with the champion run's data_md5 tag"
            )
        """),
        # No model, a version without the alias, a champion whose run has no data_md5: all new.
        case("""
        write_pin(v1_md5, "v1")
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
        plain = add_version({"data_version": "v1", "data_md5": v1_md5})
        if is_new_data(mine) is not True:
            raise AssertionError(
                "a version trained on this data exists, but nothing is @champion: it is new"
            )
        crown(add_version({"data_version": "v1"}))
        try:
            answer = is_new_data(mine)
        except KeyError as error:
            raise AssertionError(
                f"the champion's run has no data_md5 tag ({error}): return True, not a KeyError"
            ) from None
        if answer is not True:
            raise AssertionError("the champion's run has no data_md5 tag: nothing vouches, True")
        crown(plain)
        if is_new_data(mine) is not False:
            raise AssertionError("@champion now points at a version trained on this md5: False")
        """),
        # It reads the champion, not the newest version nor any version.
        case("""
        other = "fedcba9876543210fedcba9876543210.dir"
        old = add_version({"data_version": "v1", "data_md5": v1_md5})
        newer = add_version({"data_version": "v9", "data_md5": other})
        crown(old)
        write_pin(other, "v9")
        if is_new_data(mine) is not True:
            raise AssertionError(
                f"a newer version (v{newer}) saw this md5, but the champion (v{old}) did not: "
                "the question is whether the champion was trained on it"
            )
        crown(newer)
        write_pin(v1_md5, "v1")
        if is_new_data(mine) is not True:
            raise AssertionError(f"@champion moved to v{newer}, trained on other data: v1 is new")
        write_pin(other, "v9")
        if is_new_data(mine) is not False:
            raise AssertionError(f"@champion v{newer} was trained on exactly this md5: False")
        """),
    ],
    2: [
        # Without a champion only the floor counts, and the margin does not matter.
        case("""
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
        """),
        # Both are scored on the digits given: here, those one model gets right and the other not.
        case("""
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
        """),
        # The margin: positive asks for more, negative tolerates a loss; the floor stays.
        case("""
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
        """),
    ],
    3: [
        # No champion yet: the first model is promoted; asked again, nothing is new, nothing trains.
        case("""
        workspace("v1")
        result = guarded_promotion(mine, params, 0.0)
        if result.get("decision") != "promoted":
            raise AssertionError(f"with no champion, a good v1 model is promoted: {result}")
        if result.get("data_version") != "v1" or champion_now() != result.get("version"):
            raise AssertionError(
                f"the record should name data v1 and the version now @champion: {result}"
            )
        tags = client.get_model_version(name, result["version"]).tags
        if tags.get("gate.decision") != "promoted" or not tags.get("gate.reason"):
            raise AssertionError(f"tag the version gate.decision and gate.reason: {tags}")
        trained = len(new_runs())
        again = guarded_promotion(mine, params, 0.0)
        if again.get("decision") != "skipped" or again.get("version") is not None:
            raise AssertionError(f"v1 trained the champion now: skip it, got {again}")
        if not again.get("reasons"):
            raise AssertionError("a skipped retrain still says why, in reasons")
        if len(new_runs()) != trained or versions_now() != [1]:
            raise AssertionError("a skipped retrain must not train, log or register anything")
        """),
        # Data that fails validation: failed, named, nothing registered, the champion untouched.
        case("""
        crown(add_version({"data_version": "v1", "data_md5": v1_md5}))
        workspace("v1")
        next((mine.data_dir / "val" / "5").glob("*.png")).write_bytes(b"\\x89PNG, or not")
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
        if champion_now() != "1" or versions_now() != [1] or result.get("version") is not None:
            raise AssertionError("a failure must leave @champion and the registry as they were")
        """),
        # A failure after registering, a margin too high, then a promotion: @champion moves last.
        case("""
        crown(add_version({"data_version": "v1", "data_md5": v1_md5}))
        workspace("v2")
        yours = globals()["judge"]

        def judge_that_fails(*args, **kwargs):
            raise RuntimeError("the val split went missing")

        globals()["judge"] = judge_that_fails
        try:
            result = guarded_promotion(mine, params, 0.0)
        finally:
            globals()["judge"] = yours
        if result.get("decision") != "failed" or champion_now() != "1":
            raise AssertionError(
                f"judge raised after the model was registered: failed, @champion kept ({result})"
            )
        if result.get("reasons") != ["RuntimeError: the val split went missing"]:
            raise AssertionError(f"the reason is '<ExceptionName>: <message>': {result}")
        registered = result.get("version")
        if registered is None or int(registered) not in versions_now():
            raise AssertionError(f"'version' is the version registered before it failed: {result}")
        if "gate.decision" in client.get_model_version(name, registered).tags:
            raise AssertionError("the judge failed: the version should carry no gate.decision")
        high = guarded_promotion(mine, params, 0.05)
        if high.get("decision") != "rejected" or champion_now() != "1":
            raise AssertionError(f"the v2 model does not beat v1's by 0.05: rejected, {high}")
        tags = client.get_model_version(name, high["version"]).tags
        if tags.get("gate.decision") != "rejected" or "champion" not in tags.get("gate.reason", ""):
            raise AssertionError(f"the refused version's tags should say why: {tags}")
        done = guarded_promotion(mine, params, 0.0)
        if done.get("decision") != "promoted" or champion_now() != done.get("version"):
            raise AssertionError(f"with no margin the v2 model is promoted: {done}")
        if done.get("data_version") != "v2" or done.get("reasons") != []:
            raise AssertionError(f"promoted: data v2, and no reasons, {done}")
        """),
    ],
    4: [
        # Ten versions: sorted as numbers, tags read, missing ones filled in, one champion.
        case("""
        decisions = {1: "promoted", 3: "promoted", 5: None, 9: "promoted", 10: None}
        rows = []
        for number in range(1, 11):
            decision = decisions.get(number, "rejected")
            data = None if number == 4 else f"v{number}"
            add_version({"data_version": data} if data else {}, decision)
            rows.append((number, data or "unknown", decision or "not judged", number == 9))
        crown("9")
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
        """),
        # No such model: empty, with the columns; versions but no champion: all False.
        case("""
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
            add_version({"data_version": "v1"}, "promoted")
        history = retraining_history(mine)
        if history["champion"].tolist() != [False, False, False]:
            raise AssertionError("no alias @champion: every version has champion False")
        """),
        # Rollback goes to the newest promoted version older than the champion, by number.
        case("""
        decisions = {1: "promoted", 2: "promoted", 9: "promoted", 11: "promoted", 12: "promoted"}
        for number in range(1, 13):
            add_version({"data_version": f"v{number}"}, decisions.get(number, "rejected"))
        crown("11")
        steps = []
        for _ in range(3):
            steps.append(rollback(mine))
            if champion_now() != steps[-1]:
                raise AssertionError(f"rollback said {steps[-1]}, @champion is {champion_now()}")
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
        if champion_now() != "1":
            raise AssertionError(f"a refused rollback moved @champion to {champion_now()}")
        """),
        # No champion, or only refused versions before it: ValueError, and nothing moves.
        case("""
        add_version({"data_version": "v1"}, "rejected")
        add_version({"data_version": "v2"}, None)
        add_version({"data_version": "v3"}, "promoted")
        try:
            rollback(mine)
        except ValueError:
            pass
        else:
            raise AssertionError("there is no @champion to roll back from: raise ValueError")
        crown("3")
        try:
            rollback(mine)
        except ValueError:
            pass
        else:
            raise AssertionError("v1 was refused and v2 never judged: raise ValueError")
        if champion_now() != "3":
            raise AssertionError(f"a refused rollback moved @champion to v{champion_now()}")
        """),
    ],
}
