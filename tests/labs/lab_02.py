"""Hidden cases of lab 02 (experiment tracking), run by the grader in the learner's kernel.

Each case runs after the cells tagged setup, parameters and exercise-N, so the learner's
functions and the setup's names (`experiment_name`, `sweep`) exist. Each builds its own case in
a throwaway experiment (`with _lab02_throwaway_experiment() as (name, experiment_id):`) deleted
afterwards, so the lab's `lab-02` is left as it was; imports what it uses itself; is sent as
source, called, and its name deleted, so the learner's names stay untouched; and raises
AssertionError with a plain message when the answer is wrong.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.grading import Cases

if TYPE_CHECKING:
    from collections.abc import Callable

    from app.training import LoggedRun

    # In the learner's kernel: the setup cell's names (solutions/02_experiment_tracking.ipynb).
    experiment_name: str = ...
    sweep: dict[float, LoggedRun] = ...
    # In the learner's kernel: the learner's functions (solutions/02_experiment_tracking.ipynb).
    log_run: Callable[[dict, dict, dict], str] = ...
    log_extra: Callable[[str, str, dict[str, float]], None] = ...
    find_runs: Callable[[str, str, float], list[str]] = ...
    best_run_id: Callable[..., str] = ...
    promotion_ok: Callable[[dict, float, float], tuple[bool, list[str]]] = ...

cases = Cases()


@cases.helper
def _lab02_throwaway_experiment():
    """`with _lab02_throwaway_experiment() as (name, id):` an experiment of the case's own, deleted
    afterwards, any run left open ended and the lab's experiment active again."""
    import contextlib
    import uuid

    import mlflow
    from mlflow.tracking import MlflowClient

    @contextlib.contextmanager
    def experiment():
        client = MlflowClient()
        name = f"lab-02-grader-{uuid.uuid4().hex[:8]}"
        experiment_id = client.create_experiment(name)
        try:
            yield name, experiment_id
        finally:
            while mlflow.active_run():
                mlflow.end_run()
            mlflow.set_experiment(experiment_name)  # the lab's own again, whatever the case set
            client.delete_experiment(experiment_id)

    return experiment()


@cases.exercise(1)
def _logs_params_metrics_and_tags_in_a_closed_run():
    """The params, metrics and tags of one run, as strings and floats, in a closed run."""
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    with _lab02_throwaway_experiment() as (_, experiment_id):
        mlflow.set_experiment(experiment_id=experiment_id)
        run_id = log_run(
            {"family": "baseline", "C": 0.5, "max_iter": 200},
            {"val_accuracy": 0.875, "val_macro_f1": 0.8625},
            {"data_version": "v2", "purpose": "grading"},
        )
        if mlflow.active_run() is not None:
            raise AssertionError("log_run left its run open: log inside `with mlflow.start_run()`")
        if not isinstance(run_id, str):
            raise AssertionError(f"log_run should return the run id, a str, not {run_id!r}")
        run = client.get_run(run_id)
        if run.info.experiment_id != experiment_id:
            raise AssertionError("the run was not logged into the active experiment")
        if run.info.status != "FINISHED":
            raise AssertionError(f"the run should be FINISHED, not {run.info.status}")
        if run.data.params != {"family": "baseline", "C": "0.5", "max_iter": "200"}:
            raise AssertionError(f"the run holds the wrong params: {run.data.params}")
        if run.data.metrics != {"val_accuracy": 0.875, "val_macro_f1": 0.8625}:
            raise AssertionError(f"the run holds the wrong metrics: {run.data.metrics}")
        if {"data_version": "v2", "purpose": "grading"}.items() - run.data.tags.items():
            raise AssertionError("the tags given to log_run are not on the run")


@cases.exercise(1)
def _logs_each_run_in_the_active_experiment():
    """Each call makes a run of its own, in whichever experiment is active at the time."""
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    with _lab02_throwaway_experiment() as (_, first), _lab02_throwaway_experiment() as (_, second):
        mlflow.set_experiment(experiment_id=first)
        a = log_run({"family": "cnn"}, {"val_accuracy": 0.98}, {"note": "a"})
        if mlflow.active_run() is not None:
            raise AssertionError("log_run left its run open: log inside `with mlflow.start_run()`")
        mlflow.set_experiment(experiment_id=second)
        b = log_run({"family": "baseline"}, {"val_accuracy": 0.91}, {"note": "b"})
        if a == b:
            raise AssertionError("two calls of log_run returned the same run id")
        placed = (client.get_run(a).info.experiment_id, client.get_run(b).info.experiment_id)
        if placed != (first, second):
            raise AssertionError("log_run must log into the active experiment, whichever it is")
        if client.get_run(b).data.metrics != {"val_accuracy": 0.91}:
            raise AssertionError("the second run holds metrics it was not given")


@cases.exercise(1)
def _logs_a_run_with_params_alone():
    """Empty metrics and tags are a valid run too."""
    import mlflow
    from mlflow.tracking import MlflowClient

    with _lab02_throwaway_experiment() as (_, experiment_id):
        mlflow.set_experiment(experiment_id=experiment_id)
        run_id = log_run({"family": "dummy", "strategy": "prior"}, {}, {})
        run = MlflowClient().get_run(run_id)
        if run.info.status != "FINISHED" or mlflow.active_run() is not None:
            raise AssertionError("with no metrics and no tags, log_run should still close a run")
        if run.data.params != {"family": "dummy", "strategy": "prior"} or run.data.metrics:
            raise AssertionError("with empty metrics, the run should hold the params alone")


@cases.exercise(2)
def _adds_metrics_and_a_json_to_the_given_run():
    """log_extra adds metrics and a JSON artifact to the given run, and makes no new run."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    with _lab02_throwaway_experiment() as (_, experiment_id):
        with mlflow.start_run(experiment_id=experiment_id) as run:
            mlflow.log_metric("val_accuracy", 0.93)
        values = {"accuracy": 0.42, "macro_f1": 0.375, "recall_3": 0.125}
        try:
            log_extra(run.info.run_id, "fresh", values)
        except MlflowException as error:
            raise AssertionError(
                "log_extra failed on a run outside the active experiment: write to it by its "
                f"id with MlflowClient ({error.message[:80]})"
            ) from None
        if mlflow.active_run() is not None:
            raise AssertionError("log_extra left the run open")
        after = client.get_run(run.info.run_id)
        expected = {"val_accuracy": 0.93, "fresh_accuracy": 0.42, "fresh_macro_f1": 0.375}
        expected["fresh_recall_3"] = 0.125
        if after.data.metrics != expected:
            raise AssertionError(f"the run should hold {expected}, not {after.data.metrics}")
        if after.info.status != "FINISHED":
            raise AssertionError(f"the run should end FINISHED again, not {after.info.status}")
        saved = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/fresh.json")
        if saved != values:
            raise AssertionError(f"fresh.json should hold {values}, not {saved}")
        runs = client.search_runs([experiment_id])
        if len(runs) != 1:
            raise AssertionError("log_extra made a new run: add to the existing one (its run_id)")


@cases.exercise(2)
def _finds_runs_at_or_above_the_threshold():
    """find_runs keeps the runs at or above the threshold, and reads the metric it is given."""
    import mlflow

    with _lab02_throwaway_experiment() as (name, experiment_id):
        ids = {}
        for accuracy, f1 in [(0.5, 0.99), (0.9, 0.2), (0.95, 0.3), (0.99, 0.1)]:
            with mlflow.start_run(experiment_id=experiment_id) as run:
                mlflow.log_metrics({"val_accuracy": accuracy, "val_macro_f1": f1})
            ids[accuracy] = run.info.run_id
        with mlflow.start_run(experiment_id=experiment_id):
            mlflow.log_metric("train_seconds", 3.0)
        found = find_runs(name, "val_accuracy", 0.9)
        if sorted(found) != sorted(ids[a] for a in (0.9, 0.95, 0.99)):
            raise AssertionError("find_runs should return the runs at or above 0.9, the 0.9 too")
        if list(find_runs(name, "val_accuracy", 0.999)) != []:
            raise AssertionError("no run reaches 0.999: find_runs should return an empty list")
        if list(find_runs(name, "val_macro_f1", 0.95)) != [ids[0.5]]:
            raise AssertionError("find_runs should filter on the metric it is given")


@cases.exercise(2)
def _finds_what_log_extra_added():
    """The two together: what log_extra added, find_runs can find."""
    import mlflow
    from mlflow.exceptions import MlflowException

    with _lab02_throwaway_experiment() as (name, experiment_id):
        runs = []
        for _ in range(3):
            with mlflow.start_run(experiment_id=experiment_id) as run:
                mlflow.log_param("family", "baseline")
            runs.append(run.info.run_id)
        try:
            log_extra(runs[0], "drift", {"accuracy": 0.8})
            log_extra(runs[1], "drift", {"accuracy": 0.3})
        except MlflowException as error:
            raise AssertionError(
                "log_extra failed on a run outside the active experiment: write to it by its "
                f"id with MlflowClient ({error.message[:80]})"
            ) from None
        found = list(find_runs(name, "drift_accuracy", 0.5))
        if found != [runs[0]]:
            raise AssertionError("after log_extra, find_runs on drift_accuracy >= 0.5 finds 1 run")


@cases.exercise(3)
def _picks_the_highest_score_or_the_lowest_loss():
    """Highest for a score, lowest for a loss; a run without the metric does not count."""
    import mlflow

    with _lab02_throwaway_experiment() as (name, experiment_id):
        ids = {}
        for accuracy, loss in [(0.8, 0.6), (0.95, 0.2), (0.7, 0.9), (0.9, 0.1)]:
            with mlflow.start_run(experiment_id=experiment_id) as run:
                mlflow.log_metrics({"val_accuracy": accuracy, "val_loss": loss})
            ids[accuracy] = run.info.run_id
        with mlflow.start_run(experiment_id=experiment_id):
            mlflow.log_metric("train_seconds", 1.0)
        if best_run_id(name, "val_accuracy") != ids[0.95]:
            raise AssertionError("best_run_id should pick the run with the highest val_accuracy")
        if best_run_id(name, "val_accuracy", greater_is_better=False) != ids[0.7]:
            raise AssertionError("with greater_is_better=False, the lowest value wins")
        if best_run_id(name, "val_loss", greater_is_better=False) != ids[0.9]:
            raise AssertionError("for val_loss, the run with the lowest loss is the best")


@cases.exercise(3)
def _ignores_failed_and_running_runs():
    """A failed run, and one still running, are no candidates however good their numbers."""
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    with _lab02_throwaway_experiment() as (name, experiment_id):
        with mlflow.start_run(experiment_id=experiment_id) as run:
            mlflow.log_metrics({"val_accuracy": 0.9, "val_loss": 0.3})
        failed = client.create_run(experiment_id).info.run_id
        client.log_metric(failed, "val_accuracy", 1.0)
        client.log_metric(failed, "val_loss", 0.0)
        client.set_terminated(failed, "FAILED")
        running = client.create_run(experiment_id).info.run_id
        client.log_metric(running, "val_accuracy", 0.99)
        if best_run_id(name, "val_accuracy") != run.info.run_id:
            raise AssertionError("only FINISHED runs count: a failed or running one won")
        if best_run_id(name, "val_loss", greater_is_better=False) != run.info.run_id:
            raise AssertionError("only FINISHED runs count, for a loss too")


@cases.exercise(3)
def _raises_valueerror_when_no_run_logged_the_metric():
    """No finished run logged the metric: ValueError, not a wrong id or a KeyError."""
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    with _lab02_throwaway_experiment() as (name, experiment_id):
        with mlflow.start_run(experiment_id=experiment_id):
            mlflow.log_metric("train_seconds", 2.0)
        failed = client.create_run(experiment_id).info.run_id
        client.log_metric(failed, "val_accuracy", 0.97)
        client.set_terminated(failed, "FAILED")
        try:
            answer = best_run_id(name, "val_accuracy")
        except ValueError:
            pass
        else:
            raise AssertionError(
                f"no finished run logged val_accuracy: expected ValueError, got {answer!r}"
            )


@cases.exercise(4)
def _judges_the_sweep_s_real_runs():
    """Real runs of the setup's sweep, judged against floors computed here."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    for min_acc, min_rec in [(0.9, 0.8), (0.96, 0.5), (0.5, 0.86)]:
        for run in sweep.values():
            metrics = client.get_run(run.run_id).data.metrics
            floors = {"val_accuracy": min_acc} | {f"val_recall_{d}": min_rec for d in range(10)}
            failing = [name for name, floor in floors.items() if metrics[name] < floor]
            ok, reasons = promotion_ok(metrics, min_acc, min_rec)
            if ok != (not failing):
                raise AssertionError(
                    f"floors {min_acc}/{min_rec}: expected ok={not failing}, got {ok}"
                )
            if len(reasons) != len(failing) or not all(
                any(name in reason for reason in reasons) for name in failing
            ):
                raise AssertionError(f"expected one reason each for {failing}, got {reasons}")


@cases.exercise(4)
def _names_each_failure_and_passes_at_the_floor():
    """Several failures at once, each named; values exactly at the floor pass."""
    good = {f"val_recall_{d}": 0.95 for d in range(10)} | {"val_accuracy": 0.97}
    good["train_seconds"] = 1.5
    result = promotion_ok(good, 0.95, 0.9)
    if tuple(result) != (True, []):
        raise AssertionError(f"a run above every floor should give (True, []), not {result}")
    edge = {f"val_recall_{d}": 0.9 for d in range(10)} | {"val_accuracy": 0.95}
    if promotion_ok(edge, 0.95, 0.9)[0] is not True:
        raise AssertionError("a value exactly at its floor passes ('at least')")
    bad = good | {"val_accuracy": 0.9, "val_recall_2": 0.5, "val_recall_7": 0.89}
    ok, reasons = promotion_ok(bad, 0.95, 0.9)
    if ok is not False:
        raise AssertionError("low accuracy and two weak digits: the answer must be False")
    names = ["val_accuracy", "val_recall_2", "val_recall_7"]
    if len(reasons) != 3 or not all(any(n in r for r in reasons) for n in names):
        raise AssertionError(f"expected one reason naming each of {names}, got {reasons}")
    if not all(isinstance(reason, str) for reason in reasons):
        raise AssertionError("each reason should be a sentence (a str)")


@cases.exercise(4)
def _names_each_missing_metric():
    """Missing metrics fail, each with its own reason; other metrics do not matter."""
    metrics = {f"val_recall_{d}": 0.99 for d in range(10) if d != 5}
    metrics |= {"train_accuracy": 0.2, "val_loss": 9.0}
    try:
        ok, reasons = promotion_ok(metrics, 0.9, 0.9)
    except KeyError as error:
        raise AssertionError(f"a missing metric ({error}) is a reason, not a KeyError") from None
    if ok is not False:
        raise AssertionError("val_accuracy and val_recall_5 are missing: the answer must be False")
    if len(reasons) != 2 or not all(
        any(n in r for r in reasons) for n in ("val_accuracy", "val_recall_5")
    ):
        raise AssertionError(f"expected a reason naming each missing metric, got {reasons}")
