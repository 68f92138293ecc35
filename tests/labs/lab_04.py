"""Hidden cases of lab 04 (deployment), run by the grader in the learner's kernel.

Each case runs after the cells tagged setup, parameters and exercise-N, so the learner's
functions and the setup's names (`api`, `settings`, `X_val`, `weak`, ...) exist. Most cases
talk to the live API of the lab's stack and compare the learner's answer with what the API
itself says to a request the case sends; none depends on how fast an answer comes. Where an
exercise builds on another function (`predict_many` on `predict`, `latency_table` on
`time_requests`), the case stands in for that function for its duration (`global predict`: the
kernel's) and puts the learner's back afterwards; `wait_until_ready` meets a fake API
(`httpx.MockTransport`) that answers 503 or refuses connections exactly as the case says. Each
case imports what it uses itself, is sent as source, called, and its name deleted, so the
learner's names stay untouched; it cleans up what it creates (a throwaway registered model), and
raises AssertionError with a plain message when the answer is wrong.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.grading import Cases

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx
    import numpy as np
    import pandas as pd

    from app.config import Settings
    from app.training.tracking import LoggedRun

    # In the learner's kernel: the setup cell's names (solutions/04_deployment.ipynb).
    api: httpx.Client = ...
    settings: Settings = ...
    weak: LoggedRun = ...
    X_val: np.ndarray = ...
    X_all: np.ndarray = ...
    # In the learner's kernel: the learner's functions (solutions/04_deployment.ipynb).
    ApiError: type[Exception] = ...
    predict: Callable[..., list[int]] = ...
    predict_many: Callable[..., list[int]] = ...
    served_is: Callable[[str, str], bool] = ...
    disagreements: Callable[..., list[int]] = ...
    wait_until_ready: Callable[..., dict] = ...
    time_requests: Callable[..., np.ndarray] = ...
    latency_table: Callable[..., pd.DataFrame] = ...
    max_difference: Callable[..., tuple[str, float]] = ...

cases = Cases()


@cases.exercise(1)
def _predicts_real_digits_as_ints():
    """Real digits, as an array or a list of rows: the API's digits, as Python ints."""

    def api_digits(rows):
        answer = api.post("/predict", json={"instances": rows.tolist()}).json()
        return [prediction["digit"] for prediction in answer["predictions"]]

    rows = X_val[100:112]
    expected = api_digits(rows)
    answer = predict(rows)
    if not isinstance(answer, list) or not all(type(digit) is int for digit in answer):
        raise AssertionError(f"predict should return a list of ints, not {answer!r}")
    if answer != expected:
        raise AssertionError(f"for val rows 100-111 the API says {expected}, predict gave {answer}")
    if predict(rows.tolist()) != expected:
        raise AssertionError("predict should take a list of rows as well as an array")
    if predict(X_val[7:8]) != api_digits(X_val[7:8]):
        raise AssertionError("for a single row, predict should return a list of one digit")


@cases.exercise(1)
def _raises_the_api_s_own_refusals():
    """Wrong shapes and values: ApiError with the status and the API's own message."""
    import numpy as np

    examples = {
        "two rows of 65 values": np.ones((2, 65)),
        "a pixel of 16.5": np.concatenate([np.zeros((1, 63)), [[16.5]]], axis=1),
        "a negative pixel in the second row": np.vstack([X_val[0], np.full(64, -2.0)]),
        "no rows at all": [],
    }
    for name, images in examples.items():
        expected = api.post("/predict", json={"instances": np.asarray(images).tolist()})
        status, message = expected.status_code, expected.json()["error"]
        try:
            answer = predict(images)
        except ApiError as error:
            if error.status != status:
                raise AssertionError(
                    f"{name}: ApiError.status should be {status}, not {error.status}"
                ) from None
            if error.message != message:
                raise AssertionError(
                    f"{name}: ApiError.message should be the API's own error {message!r}, "
                    f"not {error.message!r}"
                ) from None
        except Exception as error:
            raise AssertionError(
                f"{name}: expected ApiError, got {type(error).__name__}: {error}"
            ) from None
        else:
            raise AssertionError(
                f"{name}: the API refuses it with {status}, but predict returned {answer!r}"
            )


@cases.exercise(1)
def _sends_too_many_rows_and_passes_the_refusal_on():
    """More rows than the API takes: predict sends them anyway and passes on the refusal."""
    import numpy as np

    rows = np.tile(X_val[:1], (settings.api_max_instances + 1, 1))
    try:
        answer = predict(rows)
    except ApiError as error:
        expected = f"too many instances: {len(rows)} > {settings.api_max_instances}"
        if error.status != 422 or error.message != expected:
            raise AssertionError(
                f"expected ApiError(422, {expected!r}), got {error.status}, {error.message!r}"
            ) from None
    else:
        raise AssertionError(
            f"{len(rows)} rows are over the API's limit, yet predict returned {len(answer)} "
            "digits: send the rows as they are, and let the API refuse them"
        )


@cases.exercise(2)
def _sends_batches_of_at_most_the_limit():
    """Batches of at most the limit (or batch_size), in order, each sent through predict."""
    import numpy as np

    global predict
    learners = predict
    sizes = []

    def fake_predict(images):
        rows = np.asarray(images)
        sizes.append(len(rows))
        return [int(row.sum()) % 10 for row in rows]

    limit = settings.api_max_instances
    rows = np.random.default_rng(4).integers(0, 17, size=(2 * limit + 345, 64)).astype(float)
    expected = [int(row.sum()) % 10 for row in rows]
    predict = fake_predict
    try:
        answer = predict_many(rows)
        if sizes != [limit, limit, 345]:
            raise AssertionError(
                f"{len(rows)} rows, limit {limit}: expected batches {[limit, limit, 345]}, "
                f"sent {sizes}"
            )
        if list(answer) != expected:
            raise AssertionError("predict_many should return every batch's digits, in order")
        sizes.clear()
        answer = predict_many(rows[:20], batch_size=7)
        if sizes != [7, 7, 6] or list(answer) != expected[:20]:
            raise AssertionError(f"20 rows, batch_size=7: expected batches [7, 7, 6], not {sizes}")
        sizes.clear()
        predict_many(rows[:limit])
        if sizes != [limit]:
            raise AssertionError(f"exactly {limit} rows fit in one request, not {sizes}")
    finally:
        predict = learners


@cases.exercise(2)
def _sends_nothing_for_no_rows_or_a_bad_batch_size():
    """No rows: no request. A batch size the API cannot take: ValueError, nothing sent."""
    import numpy as np

    global predict
    learners = predict
    calls = []

    def fake_predict(images):
        calls.append(len(images))
        return [0] * len(images)

    predict = fake_predict
    try:
        answer = predict_many(np.empty((0, 64)))
        if list(answer) != [] or calls:
            raise AssertionError(
                f"no rows: expected [] and no request, got {answer!r} after {len(calls)} request(s)"
            )
        limit = settings.api_max_instances
        for size in (0, -3, limit + 1):
            try:
                predict_many(X_val[:10], batch_size=size)
            except ValueError:
                pass
            else:
                raise AssertionError(f"batch_size={size} is not in 1..{limit}: expected ValueError")
            if calls:
                raise AssertionError(f"batch_size={size}: raise ValueError before sending anything")
    finally:
        predict = learners


@cases.exercise(2)
def _answers_as_the_api_on_every_digit():
    """The real API, reversed digits in batches of 250: what the API answers row by row."""
    rows = X_all[::-1]
    expected = []
    for start in range(0, len(rows), 500):
        answer = api.post("/predict", json={"instances": rows[start : start + 500].tolist()})
        expected += [prediction["digit"] for prediction in answer.json()["predictions"]]
    answer = list(predict_many(rows, batch_size=250))
    if len(answer) != len(expected):
        raise AssertionError(f"{len(rows)} rows, batch_size=250: got {len(answer)} digits")
    wrong = [row for row, (a, b) in enumerate(zip(answer, expected, strict=True)) if a != b]
    if wrong:
        raise AssertionError(
            f"{len(rows)} rows, batch_size=250: {len(wrong)} digits differ from the API's, "
            f"the first at row {wrong[0]} (out of order?)"
        )


@cases.exercise(3)
def _knows_which_alias_is_served():
    """The champion by name and alias; absent aliases and models are False, not errors."""
    from mlflow.tracking import MlflowClient

    served = api.get("/model").json()
    client = MlflowClient()
    name = settings.model_name
    for alias in ("champion", "challenger"):
        try:
            version = client.get_model_version_by_alias(name, alias).version
        except Exception:
            version = None
        expected = version == served["version"]
        if served_is(name, alias) is not expected:
            raise AssertionError(
                f"@{alias} is v{version} and the API serves v{served['version']}: "
                f"served_is should be {expected}"
            )
    for model, alias in ((name, "lab-04-no-such-alias"), ("lab-04-no-such-model", "champion")):
        try:
            answer = served_is(model, alias)
        except Exception as error:
            raise AssertionError(
                f"{model}@{alias} does not exist: expected False, got "
                f"{type(error).__name__}: {error}"
            ) from None
        if answer is not False:
            raise AssertionError(f"{model}@{alias} does not exist: expected False, not {answer!r}")


@cases.exercise(3)
def _compares_the_model_name_too():
    """Another registered model whose @champion has the served version's number: not served."""
    import uuid

    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    served = api.get("/model").json()
    name = f"lab-04-grader-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    try:
        for _ in range(int(served["version"])):
            version = client.create_model_version(
                name,
                source=weak.model_uri,
                run_id=weak.run_id,
                model_id=weak.model_uri.removeprefix("models:/"),
            )
        client.set_registered_model_alias(name, "champion", version.version)
        if served_is(name, "champion"):
            raise AssertionError(
                f"{name}@champion is v{version.version}, like the served model, but the API "
                f"serves {served['name']!r}: compare the names too"
            )
    finally:
        client.delete_registered_model(name)


@cases.exercise(3)
def _finds_where_a_model_and_the_api_disagree():
    """Disagreements: none with @champion on all digits; with the weak model, exactly these."""
    import mlflow
    import numpy as np

    champion_uri = f"models:/{settings.model_name}@champion"
    answer = disagreements(champion_uri, X_all[::-1])
    if list(answer) != []:
        raise AssertionError(
            f"the API serves @champion: on all {len(X_all)} digits expected [], "
            f"got {len(answer)} rows"
        )
    rows = X_val[::-1][:300]
    served = api.post("/predict", json={"instances": rows.tolist()}).json()["predictions"]
    api_digits = np.array([prediction["digit"] for prediction in served])
    weak_digits = mlflow.pyfunc.load_model(weak.model_uri).predict(rows)["digit"].to_numpy()
    expected = np.flatnonzero(api_digits != weak_digits).tolist()
    answer = disagreements(weak.model_uri, rows)
    if not isinstance(answer, list) or not all(type(index) is int for index in answer):
        raise AssertionError(f"disagreements should return a list of ints, not {answer!r}")
    if answer != expected:
        raise AssertionError(
            f"the weak model and the API differ on {len(expected)} of these rows, the first "
            f"{expected[:5]}; got {len(answer)} rows, the first {answer[:5]}"
        )


@cases.exercise(4)
def _polls_ready_until_it_answers_200():
    """The live API answers at once; a fake one says 503 twice, then ready: poll /ready."""
    import httpx

    answer = wait_until_ready(api, timeout=30)
    ready = api.get("/ready").json()
    if answer != ready:
        raise AssertionError(f"the live API is ready: expected {ready}, got {answer!r}")
    asked = []

    def fake_api(request):
        asked.append(request.url.path)
        if request.url.path == "/health":
            return httpx.Response(200, json={"status": "ok"})
        if request.url.path != "/ready":
            return httpx.Response(404, json={"error": "Not Found"})
        if asked.count("/ready") <= 2:
            return httpx.Response(503, json={"error": "not ready: loading version 7"})
        return httpx.Response(200, json={"status": "ready", "model_version": "7"})

    client = httpx.Client(transport=httpx.MockTransport(fake_api), base_url="http://api.test")
    answer = wait_until_ready(client, timeout=30, interval=0.01)
    if answer != {"status": "ready", "model_version": "7"}:
        raise AssertionError(
            f"the API said 503 twice, then ready with v7: expected its JSON, got {answer!r}"
            + (" (/health answers while loading: poll /ready)" if "/health" in asked else "")
        )
    if asked.count("/ready") != 3:
        raise AssertionError(f"expected 3 requests to /ready (503, 503, 200), sent {asked}")


@cases.exercise(4)
def _times_out_with_the_api_s_reason():
    """Never ready: TimeoutError carrying the API's own reason, not an endless loop."""
    import time

    import httpx

    reason = "not ready: no model has the alias @champion in 'lab-04-case' yet"
    give_up = time.monotonic() + 60

    def fake_api(request):
        if time.monotonic() > give_up:  # ends a wait that would never end
            return httpx.Response(200, json={"status": "ready", "model_version": "too-late"})
        return httpx.Response(503, json={"error": reason})

    client = httpx.Client(transport=httpx.MockTransport(fake_api), base_url="http://api.test")
    try:
        answer = wait_until_ready(client, timeout=0.3, interval=0.05)
    except TimeoutError as error:
        if reason not in str(error):
            raise AssertionError(
                f"the TimeoutError should carry the API's reason {reason!r}; it says {error}"
            ) from None
    except Exception as error:
        raise AssertionError(
            f"expected TimeoutError, got {type(error).__name__}: {error}"
        ) from None
    else:
        raise AssertionError(
            f"the API never became ready (timeout=0.3 s), yet wait_until_ready returned {answer!r}"
        )


@cases.exercise(4)
def _keeps_asking_while_connections_are_refused():
    """Refused connections mean not up yet: keep asking, and time out with that reason."""
    import httpx

    from app import stack

    attempts = []

    def starting_api(request):
        attempts.append(request.url.path)
        if len(attempts) <= 2:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        return httpx.Response(200, json={"status": "ready", "model_version": "3"})

    client = httpx.Client(transport=httpx.MockTransport(starting_api), base_url="http://api.test")
    try:
        answer = wait_until_ready(client, timeout=30, interval=0.01)
    except httpx.HTTPError as error:
        raise AssertionError(
            f"a refused connection means not up yet: keep asking, do not raise "
            f"{type(error).__name__}"
        ) from None
    if answer != {"status": "ready", "model_version": "3"} or len(attempts) != 3:
        raise AssertionError(
            f"refused twice, then ready: expected its JSON after 3 tries, got {answer!r} "
            f"after {len(attempts)}"
        )
    nowhere = httpx.Client(base_url=f"http://127.0.0.1:{stack.free_port()}", timeout=1)
    try:
        wait_until_ready(nowhere, timeout=0.5, interval=0.1)
    except TimeoutError:
        pass
    except Exception as error:
        raise AssertionError(
            f"nothing listens: expected TimeoutError, got {type(error).__name__}: {error}"
        ) from None
    else:
        raise AssertionError("nothing listens on that port, yet wait_until_ready returned")


@cases.exercise(5)
def _times_n_calls_after_one_warm_up():
    """One untimed warm-up, then n timed calls of predict(rows), in milliseconds."""
    import time

    import numpy as np

    global predict
    learners = predict
    calls = []
    pauses = [0.2, 0.0, 0.0, 0.0, 0.06]  # seconds, call by call: the first is the warm-up

    def slow_predict(images):
        calls.append(np.asarray(images).copy())
        time.sleep(pauses[min(len(calls), len(pauses)) - 1])
        return [0] * len(images)

    predict = slow_predict
    try:
        rows = X_val[:5]
        durations = time_requests(rows, 4)
    finally:
        predict = learners
    if len(calls) != 5:
        raise AssertionError(
            f"n=4: expected 5 calls of predict (a warm-up, then 4 timed), made {len(calls)}"
        )
    if not all(np.array_equal(sent, rows) for sent in calls):
        raise AssertionError("every call should send the same rows")
    durations = np.asarray(durations, dtype=float)
    if durations.shape != (4,):
        raise AssertionError(f"expected 4 durations, got an array of shape {durations.shape}")
    if durations[-1] < 60:
        raise AssertionError(
            f"the last timed call slept 60 ms, yet measured {durations[-1]:.3g}: time each "
            "call, in milliseconds"
        )
    if durations[0] >= 200:
        raise AssertionError(
            f"the first timed call took {durations[0]:.0f} ms: the 200 ms warm-up is not timed"
        )


@cases.exercise(5)
def _tabulates_exact_percentiles_per_size():
    """The table: exact percentiles of the durations, one row per size, in the given order."""
    import numpy as np

    global time_requests
    learners = time_requests
    asked = []
    by_size = {50: [5.0, 1.0, 9.0, 2.0, 40.0], 1: [1.0, 2.0, 3.0, 4.0, 100.0], 7: [3.0] * 5}

    def fake_time_requests(rows, n):
        asked.append((len(rows), n, np.array_equal(rows, X_val[: len(rows)])))
        return np.array(by_size[len(rows)][:n])

    time_requests = fake_time_requests
    try:
        table = latency_table(X_val, [50, 1, 7], 5)
    finally:
        time_requests = learners
    if asked != [(50, 5, True), (1, 5, True), (7, 5, True)]:
        raise AssertionError(
            "expected time_requests(images[:size], 5) for the sizes 50, 1, 7 in that order; "
            f"got (size, n, the first rows?) {asked}"
        )
    if list(table.index) != [50, 1, 7] or table.index.name != "batch_size":
        raise AssertionError(
            f"the index should be the sizes [50, 1, 7], named batch_size: "
            f"{list(table.index)}, {table.index.name!r}"
        )
    if list(table.columns) != ["p50", "p95"]:
        raise AssertionError(f"the columns should be ['p50', 'p95'], not {list(table.columns)}")
    for size, durations in by_size.items():
        expected = (np.percentile(durations, 50), np.percentile(durations, 95))
        got = (table.loc[size, "p50"], table.loc[size, "p95"])
        if not np.allclose(got, expected):
            raise AssertionError(
                f"size {size}, durations {durations}: expected p50, p95 = {expected}, got {got}"
            )


@cases.exercise(5)
def _refuses_sizes_and_counts_before_measuring():
    """Sizes the images cannot fill, or n below 1: ValueError before any request."""
    global time_requests
    learners = time_requests
    asked = []

    def fake_time_requests(rows, n):
        asked.append(len(rows))
        return [1.0] * n

    time_requests = fake_time_requests
    try:
        for sizes, n in (([1, len(X_val) + 1], 3), ([0, 5], 3), ([1, 5], 0)):
            try:
                latency_table(X_val, sizes, n)
            except ValueError:
                pass
            else:
                raise AssertionError(
                    f"sizes {sizes}, n={n} with {len(X_val)} images: expected ValueError"
                )
            if asked:
                raise AssertionError(
                    f"sizes {sizes}, n={n}: raise ValueError before measuring anything"
                )
    finally:
        time_requests = learners


@cases.exercise(6)
def _compares_the_export_with_the_library_on_the_rows_given():
    """Each model, on rows it was not checked on: the native runtime's name and the exact
    largest difference, computed here the same way."""
    import mlflow
    import numpy as np

    def expected(uri, rows):
        answers, name = {}, None
        for runtime in ("onnxruntime", "native"):
            model = mlflow.pyfunc.load_model(uri, model_config={"runtime": runtime})
            probabilities = model.unwrap_python_model().classifier.predict_proba(rows)
            answers[runtime], name = probabilities, model.unwrap_python_model().runtime
        return name, float(np.abs(answers["onnxruntime"] - answers["native"]).max())

    champion = f"models:/{settings.model_name}@champion"
    blank_and_full = np.stack([np.zeros(64), np.full(64, 16.0)]).astype(np.float32)
    for uri, rows in (
        (champion, X_val[100:140]),
        (champion, blank_and_full),  # no digit at all: the two runtimes still agree
        (weak.model_uri, X_val[5:6]),
    ):
        name, difference = expected(uri, rows)
        answer = max_difference(uri, rows)
        if not isinstance(answer, tuple) or len(answer) != 2:
            raise AssertionError(f"expected a tuple (runtime, difference), got {answer!r}")
        if answer[0] != name:
            raise AssertionError(f"{uri}: the native runtime is {name!r}, not {answer[0]!r}")
        if type(answer[1]) is not float:
            raise AssertionError(f"the difference should be a Python float, not {answer[1]!r}")
        if not abs(answer[1] - difference) <= 1e-9:  # the same float32 numbers either way
            raise AssertionError(
                f"{uri}, {len(rows)} rows: the largest difference is {difference:.3g}, "
                f"not {answer[1]:.3g}"
            )
    if max_difference(weak.model_uri, X_val[5:6].tolist())[0] != "scikit-learn":
        raise AssertionError("rows may be a list of rows as well as an array")


@cases.exercise(6)
def _lets_a_model_without_an_export_fail():
    """A model logged without an ONNX export: the error of loading it as onnxruntime."""
    import shutil
    import tempfile
    from pathlib import Path

    import mlflow
    import yaml

    folder = Path(tempfile.mkdtemp(prefix="no-export-"))
    try:
        copy = Path(mlflow.artifacts.download_artifacts(weak.model_uri, dst_path=str(folder)))
        spec_file = copy / "MLmodel"
        spec = yaml.safe_load(spec_file.read_text())
        del spec["flavors"]["python_function"]["artifacts"]["onnx"]
        spec_file.write_text(yaml.safe_dump(spec))
        try:
            answer = max_difference(str(copy), X_val[:3])
        except ValueError as error:
            if "without an ONNX export" not in str(error):
                raise AssertionError(f"let the loader's own error through, not {error}") from None
        else:
            raise AssertionError(f"a model without an export cannot load as onnxruntime: {answer}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
