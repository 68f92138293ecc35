"""Hidden cases of lab 05 (monitoring), run by the grader in the learner's kernel.

Each case runs after the cells tagged setup, parameters and exercise-N, so the learner's
functions and the setup's names (`api`, `api_log`, `prometheus`, `scraped_after`,
`promtool_test`, `reference`, ...) exist, and the helpers below. Each builds its own case:
requests of its own to the API (read back by their log lines or by two scrapes around them),
made-up series for `promtool test rules` (`_lab05_requests`, `_lab05_expr_test`,
`_lab05_alert_test`), or drift references built here. It imports what it uses itself, is sent as
source, called, and its name deleted, so the learner's names stay untouched, and raises
AssertionError with a plain message when the answer is wrong. Nothing here moves an alias,
registers a model or writes outside a temporary folder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.grading import Cases

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import httpx
    import numpy as np

    from app.config import Params
    from app.data import Split
    from app.monitoring.drift import DriftReference

    # In the learner's kernel: the setup cell's names (solutions/05_monitoring.ipynb).
    api: httpx.Client = ...
    api_log: Path = ...
    params: Params = ...
    promtool: str = ...
    X_val: np.ndarray = ...
    y_val: np.ndarray = ...
    shifted: Split = ...
    reference: DriftReference = ...
    scraped_after: Callable[..., float] = ...
    promtool_test: Callable[..., str] = ...
    sent: dict[int, int] = ...
    before: float = ...
    after: float = ...
    # In the learner's kernel: the learner's functions (solutions/05_monitoring.ipynb).
    status_counts: Callable[..., dict[int, int]] = ...
    requests_by_status: Callable[[str, float], dict[int, int]] = ...
    rate_by_route: Callable[[str], str] = ...
    client_error_ratio: Callable[[str, str], str] = ...
    latency_quantile: Callable[[float, str, str], str] = ...
    psi_score: Callable[..., float] = ...
    client_error_rule: Callable[[float, str], dict] = ...

cases = Cases()


@cases.helper
def _lab05_promtool_said(problems, when=False):
    """What promtool got, on one line (its report spans many); `when`: at which evaluation."""
    import re

    text = " ".join(problems.split())
    got = text[text.rfind("got:") :] if "got:" in text else text[-200:]
    times = re.findall(r"time: (\S+?),", text) if when else []
    return f"at {times[-1]}, {got}" if times else got


@cases.helper
def _lab05_requests(route, status, values, instance="api:8000", method="POST"):
    """A made-up series of the API's request counter, its `values` in promtool's notation."""
    labels = (
        f'job="api", instance="{instance}", route="{route}", method="{method}", status="{status}"'
    )
    return {"series": f"api_requests_total{{{labels}}}", "values": values}


@cases.helper
def _lab05_expr_test(series, expr, eval_time, samples):
    """A promtool unit test: over `series`, `expr` at `eval_time` gives these samples."""
    return {
        "interval": "15s",
        "input_series": series,
        "promql_expr_test": [{"expr": expr, "eval_time": eval_time, "exp_samples": samples}],
    }


@cases.helper
def _lab05_alert_test(series, expectations):
    """A promtool unit test of the rules given: over `series`, these alerts (`_lab05_fires`,
    `_lab05_quiet`)."""
    return {"interval": "15s", "input_series": series, "alert_rule_test": expectations}


@cases.helper
def _lab05_fires(at, summary):
    """At `at`, PredictClientErrors fires, labelled severity=warning, its summary `summary`."""
    alert = {"exp_labels": {"severity": "warning"}, "exp_annotations": {"summary": summary}}
    return {"eval_time": at, "alertname": "PredictClientErrors", "exp_alerts": [alert]}


@cases.helper
def _lab05_quiet(at):
    """At `at`, PredictClientErrors does not fire."""
    return {"eval_time": at, "alertname": "PredictClientErrors", "exp_alerts": []}


@cases.exercise(1)
def _counts_only_request_lines_of_the_route():
    """Only the API's request lines of exactly that route count; the rest of a log is noise."""
    import json

    def access(route, status, method="POST"):
        return json.dumps(
            {
                "level": "INFO",
                "logger": "app.serving.access",
                "message": "request",
                "method": method,
                "route": route,
                "status": status,
                "latency_ms": 1.5,
            }
        )

    def uvicorn(path, status):
        return json.dumps(
            {
                "level": "INFO",
                "logger": "uvicorn.access",
                "message": f'127.0.0.1:5000 - "POST {path} HTTP/1.1" {status}',
            }
        )

    lines = [
        json.dumps({"level": "INFO", "logger": "uvicorn.error", "message": "Started server"}),
        access("/predict", 200),
        uvicorn("/predict", 200),
        access("/predict", 200),
        uvicorn("/predict", 200),
        access("/predict/image", 200),
        uvicorn("/predict/image", 200),
        "",
        "Traceback (most recent call last):",
        '  File "app.py", line 1, in <module>',
        access("/predict", 422),
        uvicorn("/predict", 422),
        "[1, 2, 3]",
        '"just a string"',
        json.dumps({"logger": "app.serving", "message": "model swapped in", "version": "3"}),
        access("/predict/image", 415),
        access("/predict", 200),
    ]
    try:
        counts = status_counts(lines, "/predict")
    except (json.JSONDecodeError, TypeError, AttributeError, KeyError) as error:
        raise AssertionError(
            f"status_counts raised {type(error).__name__}: {error} on a log that mixes request "
            "lines with others (uvicorn's, start-up messages, a traceback): count only the "
            "JSON objects of the logger app.serving.access"
        ) from None
    if not isinstance(counts, dict):
        raise AssertionError(f"return a dict from status to count, not {type(counts).__name__}")
    if not all(type(status) is int for status in counts):
        raise AssertionError(
            f"the statuses should be ints, not {[type(s).__name__ for s in counts]}"
        )
    if counts != {200: 3, 422: 1}:
        raise AssertionError(
            "the log holds 3 requests to /predict answered 200 and one 422 (each with a "
            f"uvicorn line beside it, and /predict/image lines around), but you counted {counts}"
        )
    image = status_counts(lines, "/predict/image")
    if image != {200: 1, 415: 1}:
        raise AssertionError(f"/predict/image got one 200 and one 415, not {image}")
    if status_counts(lines, "/model") != {}:
        raise AssertionError("no request went to /model: the answer is {}")


@cases.exercise(1)
def _counts_lines_read_from_a_file():
    """Lines read straight from a file keep their newline; a file can be read only once."""
    import json
    import tempfile
    from pathlib import Path

    statuses = [200, 404, 200, 503, 200, 404, 413]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "api.log"
        records = [
            {"logger": "app.serving.access", "route": "/model", "status": s} for s in statuses
        ]
        path.write_text("".join(json.dumps(record) + "\n" for record in records))
        with path.open() as handle:
            counts = status_counts(handle, "/model")
    if counts != {200: 3, 404: 2, 503: 1, 413: 1}:
        raise AssertionError(
            f"an open log file, lines ending in a newline, gives {counts} instead of "
            "{200: 3, 404: 2, 503: 1, 413: 1}: go through the lines once, and count each status"
        )


@cases.exercise(1)
def _counts_the_real_api_log():
    """The real API log: requests sent here, to a path no route matches and to /model."""
    import uuid

    from app.poll import wait_for

    start = api_log.stat().st_size
    missing = f"/lab-05-grader-{uuid.uuid4().hex[:8]}"
    for method in ("GET", "POST", "DELETE"):
        api.request(method, missing)
    for _ in range(2):
        api.get("/model").raise_for_status()

    def logged() -> list[str] | None:
        """The log's new lines, once the grader's 5 requests are in them."""
        lines = api_log.read_bytes()[start:].decode().splitlines()
        ours = [line for line in lines if '"app.serving.access"' in line and "/metrics" not in line]
        return lines if len(ours) >= 5 else None

    try:
        lines = wait_for(logged, 15, every=0.2)
    except TimeoutError:
        raise AssertionError("the API did not log the grader's 5 requests within 15 s") from None
    unmatched, model = status_counts(lines, "unmatched"), status_counts(lines, "/model")
    if unmatched != {404: 3}:
        raise AssertionError(
            f"3 requests to {missing} (no route: the API logs the route 'unmatched') got a 404; "
            f"you counted {unmatched}"
        )
    if model != {200: 2}:
        raise AssertionError(f"2 requests to /model got a 200 in the real log; you counted {model}")


@cases.exercise(2)
def _reads_the_counter_at_each_moment():
    """The counter as it stood at each moment: requests sent between two scrapes, every method
    of a route added up."""
    import time
    import uuid

    def grown(route, first, second):
        old, new = requests_by_status(route, first), requests_by_status(route, second)
        return {s: new[s] - old.get(s, 0) for s in new if new[s] != old.get(s, 0)}

    first = scraped_after(time.time())  # holds every request so far, none of those below
    missing = f"/lab-05-grader-{uuid.uuid4().hex[:8]}"
    for method in ("GET", "POST", "DELETE", "GET"):
        api.request(method, missing)
    for _ in range(3):
        api.get("/model").raise_for_status()
    second = scraped_after(time.time())
    model = grown("/model", first, second)
    if model != {200: 3}:
        raise AssertionError(
            "3 requests to /model came between two scrapes, so the counter at the second minus "
            f"the counter at the first is {{200: 3}}; you found {model}: evaluate at `at`"
        )
    unmatched = grown("unmatched", first, second)
    if unmatched != {404: 4}:
        raise AssertionError(
            "4 requests (GET, POST, DELETE, GET) to a path without a route got a 404: the "
            f"counter has a series per method, add them up by status. You found {unmatched}"
        )
    counts = requests_by_status("/model", second)
    if not all(type(k) is int and type(v) is int for k, v in counts.items()):
        raise AssertionError(f"statuses and counts should be ints: {counts!r}")


@cases.exercise(2)
def _finds_no_series_for_a_new_route_or_an_old_time():
    """No series: a route never requested, or a moment before the API ever ran."""
    import uuid

    never = f"/lab-05-never-{uuid.uuid4().hex[:8]}"
    if (found := requests_by_status(never, after)) != {}:
        raise AssertionError(f"a route never requested has no series: expected {{}}, got {found}")
    if (found := requests_by_status("/predict", 1_000_000_000)) != {}:
        raise AssertionError(
            f"in 2001 (at=1e9) the API did not run: expected {{}}, got {found}; pass `at` as "
            "the query's time"
        )
    at_before, at_after = (
        requests_by_status("/predict", before),
        requests_by_status("/predict", after),
    )
    if at_after.get(415, 0) - at_before.get(415, 0) != sent[415]:
        raise AssertionError(
            f"the setup sent {sent[415]} requests answered 415 between `before` and `after`, "
            f"but your counts say {at_before} then {at_after}"
        )


@cases.exercise(3)
def _rate_by_route_adds_every_series_of_a_route():
    """Requests per second by route: every method, status and instance of a route together,
    over the window given."""
    series = [
        _lab05_requests("/predict", "200", "0+12x40"),
        _lab05_requests("/predict", "422", "0+3x40"),
        _lab05_requests("/predict", "200", "0+1.5x40", instance="api-2:8000"),
        _lab05_requests("/predict/image", "200", "0+6x40"),
        _lab05_requests("/metrics", "200", "0+3x40", method="GET"),
        _lab05_requests("/health", "200", "0x19 15+15x20", method="GET"),
    ]
    per_second = {"/predict": 1.1, "/predict/image": 0.4, "/metrics": 0.2}
    for window, health in (("1m", 1.0), ("5m", 0.3)):
        expected = per_second | {"/health": health}
        expr = f"round({rate_by_route(window)}, 0.0001)"
        samples = [{"labels": f'{{route="{r}"}}', "value": v} for r, v in expected.items()]
        if problems := promtool_test(_lab05_expr_test(series, expr, "6m15s", samples)):
            raise AssertionError(
                f"rate_by_route({window!r}) should give {expected} per second (/health sped up "
                f"a minute ago), one series per route; promtool {_lab05_promtool_said(problems)}"
            )


@cases.exercise(3)
def _client_error_ratio_counts_4xx_of_the_route():
    """The share of 4xx: any 4xx, of that route only; 0 rather than nothing when none."""
    series = [
        _lab05_requests("/predict", "200", "0+9x40"),
        _lab05_requests("/predict", "422", "0+1x40"),
        _lab05_requests("/predict", "404", "0+1x40"),
        _lab05_requests("/predict", "413", "0+1x40"),
        _lab05_requests("/predict", "500", "0+3x40"),
        _lab05_requests("/predict/image", "415", "0+15x40"),
        _lab05_requests("/model", "200", "0+6x40"),
        _lab05_requests("/model", "503", "0+2x40"),
    ]
    examples = [
        ("/predict", 0.2, "3 of 15 requests a 4xx (a 422, a 404, a 413), and 3 are 5xx"),
        ("/predict/image", 1.0, "every request a 415"),
        ("/model", 0.0, "no 4xx at all (503s are 5xx): 0, not an empty answer"),
    ]
    for route, ratio, why in examples:
        expr = f"round({client_error_ratio(route, '1m')}, 0.0001)"
        samples = [{"labels": "{}", "value": ratio}]
        if problems := promtool_test(_lab05_expr_test(series, expr, "5m", samples)):
            raise AssertionError(
                f"client_error_ratio({route!r}, '1m') should be {ratio} ({why}); "
                f"promtool {_lab05_promtool_said(problems)}"
            )


@cases.exercise(3)
def _latency_quantile_reads_the_route_s_buckets():
    """A latency quantile over every status of one route, from its buckets alone."""

    def bucket(route, status, le, values):
        labels = (
            f'job="api", instance="api:8000", route="{route}", method="POST", '
            f'status="{status}", le="{le}"'
        )
        return {"series": f"api_request_duration_seconds_bucket{{{labels}}}", "values": values}

    # Every 15 s: /predict answers 9 requests with a 200 and 3 with a 422; 10 of the 12 take
    # at most 5 ms, all of them at most 10 ms. /metrics is slow: above 10 ms every time.
    per_interval = {
        ("/predict", "200"): {"0.0025": 0, "0.005": 7, "0.01": 9, "+Inf": 9},
        ("/predict", "422"): {"0.0025": 0, "0.005": 3, "0.01": 3, "+Inf": 3},
        ("/metrics", "200"): {"0.0025": 0, "0.005": 0, "0.01": 0, "+Inf": 12},
    }
    series = [
        bucket(route, status, le, f"0+{step}x40")
        for (route, status), steps in per_interval.items()
        for le, step in steps.items()
    ]
    for q, route, expected in [
        (0.5, "/predict", 0.004),
        (0.9, "/predict", 0.007),
        (0.95, "/predict", 0.0085),
        (0.5, "/metrics", 0.01),
    ]:
        expr = f"round({latency_quantile(q, route, '2m')}, 0.0001)"
        samples = [{"labels": "{}", "value": expected}]
        if problems := promtool_test(_lab05_expr_test(series, expr, "5m", samples)):
            raise AssertionError(
                f"latency_quantile({q}, {route!r}, '2m') should be {expected} s, one series "
                f"from the buckets of that route, all statuses added up; "
                f"promtool {_lab05_promtool_said(problems)}"
            )


@cases.exercise(4)
def _psi_is_0_on_the_reference_s_own_images():
    """A window exactly like the reference scores 0; a float, whatever the window."""
    import numpy as np

    from app.monitoring import drift

    own = drift.build_reference(params.monitoring, X_val, np.eye(10)[y_val])
    value = psi_score(own, X_val)
    if not isinstance(value, float):
        raise AssertionError(f"psi_score should return a float, not {type(value).__name__}")
    if abs(value) > 1e-6:
        raise AssertionError(
            f"the reference was built from these very images, so the PSI is 0, not {value:.6f}"
        )
    if not psi_score(reference, shifted.images) > psi_score(reference, X_val) > 0:
        raise AssertionError("the shifted digits should score a higher PSI than the val digits")


@cases.exercise(4)
def _psi_uses_the_reference_s_bins_and_eps():
    """The reference's own bins, and eps: computed here another way (KL both ways)."""
    import numpy as np
    from scipy.special import rel_entr

    from app.config import MonitoringParams
    from app.monitoring import drift

    monitoring = MonitoringParams(window=200, min_inputs=50, drift_threshold=0.2, pixel_bins=[8])
    two_bins = drift.build_reference(monitoring, X_val[::2], np.eye(10)[y_val[::2]])

    def expected(features, eps):
        inked = (features >= 8).mean(axis=0)
        a = np.clip(np.stack([1 - inked, inked], axis=1), eps, None)
        e = np.clip(np.asarray(two_bins.pixel_shares), eps, None)
        return float((rel_entr(a, e) + rel_entr(e, a)).sum(axis=1).mean())

    window = shifted.images[:40]
    for eps in (1e-4, 1e-2):
        try:
            got, want = psi_score(two_bins, window, eps=eps), expected(window, eps)
        except ValueError as error:
            raise AssertionError(
                f"with a reference of 2 bins (pixel_bins [8]) psi_score raised {error}: compute "
                "the window's shares in the reference's own bins, reference.params.pixel_bins"
            ) from None
        if not np.isclose(got, want, rtol=1e-9, atol=1e-12):
            raise AssertionError(
                f"a reference with 2 bins (below 8, from 8), 40 shifted digits, eps={eps}: the "
                f"PSI is {want:.6f}, not {got:.6f}. Use the reference's bins, and raise both "
                "shares to at least eps (np.clip)"
            )
    one = shifted.images[:1]  # one image: most bins are empty, eps keeps the logarithm finite
    got = psi_score(two_bins, one)
    if not np.isfinite(got) or not np.isclose(got, expected(one, 1e-4), rtol=1e-9):
        raise AssertionError(f"with empty bins the PSI is {expected(one, 1e-4):.4f}, not {got}")


@cases.exercise(4)
def _psi_refuses_no_images():
    """No image, no shares: a ValueError, not a NaN or another error."""
    import numpy as np

    try:
        answer = psi_score(reference, np.empty((0, 64)))
    except ValueError:
        return
    except Exception as error:
        raise AssertionError(
            f"with no image, raise ValueError, not {type(error).__name__}: {error}"
        ) from None
    raise AssertionError(
        f"with no image there are no shares: raise ValueError, not return {answer}"
    )


@cases.exercise(5)
def _the_rule_has_its_shape_and_passes_promtool():
    """The rule's shape, and promtool's own syntax check."""
    import subprocess
    import tempfile
    from pathlib import Path

    import yaml

    rule = client_error_rule(0.15, "3m")
    if not isinstance(rule, dict):
        raise AssertionError(f"return the rule as a dict, not {type(rule).__name__}")
    if rule.get("alert") != "PredictClientErrors":
        raise AssertionError(f"the alert is called PredictClientErrors, not {rule.get('alert')!r}")
    if rule.get("for") != "3m":
        raise AssertionError(
            f"client_error_rule(0.15, '3m') should wait 3m, not {rule.get('for')!r}"
        )
    if rule.get("labels") != {"severity": "warning"}:
        raise AssertionError(f"labels: {{'severity': 'warning'}}, not {rule.get('labels')!r}")
    if not isinstance(rule.get("expr"), str) or "0.15" not in rule["expr"]:
        raise AssertionError(f"the expr should compare with max_ratio, 0.15: {rule.get('expr')!r}")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rules.yml"
        path.write_text(yaml.safe_dump({"groups": [{"name": "grader", "rules": [rule]}]}))
        done = subprocess.run(
            [promtool, "check", "rules", str(path)], capture_output=True, text=True
        )
    if done.returncode:
        raise AssertionError(
            f"promtool check rules refuses it: {(done.stdout + done.stderr)[-300:]}"
        )


@cases.exercise(5)
def _the_alert_fires_after_for_with_the_share():
    """A client breaks at minute 5 (25 % 4xx): pending, then firing after `for_`, with the share
    in its summary; `for_` and `max_ratio` are the ones given."""
    broken = [
        _lab05_requests("/predict", "200", "0+9x80"),
        _lab05_requests("/predict", "422", "0x20 3+3x59"),
    ]
    summary = "25% of /predict requests get a 4xx"
    # Above 10 % from 6m45s on (the 5-minute rate catches up), above 20 % from about 8m45s.
    examples = [
        (
            0.1,
            "2m",
            [_lab05_quiet("8m15s"), _lab05_fires("10m", summary)],
            "quiet at 8m15s, firing at 10m",
        ),
        (
            0.1,
            "3m",
            [_lab05_quiet("9m15s"), _lab05_fires("11m", summary)],
            "quiet at 9m15s, firing at 11m",
        ),
        (
            0.2,
            "1m",
            [_lab05_quiet("8m30s"), _lab05_fires("14m", summary)],
            "quiet at 8m30s, firing at 14m",
        ),
        (
            0.3,
            "1m",
            [_lab05_quiet("14m"), _lab05_quiet("19m")],
            "never firing: 25 % is not above 30 %",
        ),
    ]
    for max_ratio, for_, expectations, why in examples:
        rule = client_error_rule(max_ratio, for_)
        if problems := promtool_test(_lab05_alert_test(broken, expectations), [rule]):
            raise AssertionError(
                f"25 % 4xx from minute 5: client_error_rule({max_ratio}, {for_!r}) should be "
                f"{why} (label severity=warning only, summary {summary!r}); "
                f"promtool {_lab05_promtool_said(problems, when=True)}"
            )


@cases.exercise(5)
def _the_alert_stays_calm_and_fires_at_half():
    """What must not fire: 5xx, 4xx of another route, no traffic; and half of requests bad."""
    calm = [
        (
            [
                _lab05_requests("/predict", "200", "0+3x60"),
                _lab05_requests("/predict", "500", "0+6x60"),
            ],
            "two thirds 5xx, no 4xx",
        ),
        (
            [
                _lab05_requests("/predict", "200", "0+9x60"),
                _lab05_requests("/predict/image", "422", "0+30x60"),
            ],
            "4xx on /predict/image only",
        ),
        (
            [
                _lab05_requests("/predict", "200", "0x60"),
                _lab05_requests("/predict", "422", "0x60"),
            ],
            "no request at all (flat counters)",
        ),
    ]
    for series, why in calm:
        test = _lab05_alert_test(series, [_lab05_quiet("14m")])
        if problems := promtool_test(test, [client_error_rule(0.05, "1m")]):
            raise AssertionError(
                f"client_error_rule(0.05, '1m') must not fire on {why}; "
                f"promtool {_lab05_promtool_said(problems, when=True)}"
            )
    half = [
        _lab05_requests("/predict", "200", "0+9x60"),
        _lab05_requests("/predict", "415", "0+9x60"),
    ]
    test = _lab05_alert_test(half, [_lab05_fires("10m", "50% of /predict requests get a 4xx")])
    if problems := promtool_test(test, [client_error_rule(0.4, "1m")]):
        raise AssertionError(
            "half of /predict requests get a 415: client_error_rule(0.4, '1m') fires, saying "
            "'50% of /predict requests get a 4xx'; "
            f"promtool {_lab05_promtool_said(problems, when=True)}"
        )
