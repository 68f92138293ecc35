"""A load test learners can read: Locust drives the native API for a bounded while, then
Prometheus is asked what the API recorded for exactly those requests.

Locust times each request from the outside (the client's own work and the loopback included);
the API's histogram times it from the inside. Both are read over the same requests: Prometheus is
queried at the last scrape before the test and the first one after (PromQL's `@`), so its counts
are the test's own, not an estimate over a window that other traffic shares.

`compare` states how far apart the two may be. The client's own cost is what Locust adds to a
route that does next to nothing (`/health`); taken off, Locust's figures for `/predict` must meet
Prometheus', each within its resolution plus the client's own spread up to that figure (Locust's
figure for `/health` above its fastest request). The mean is exact on both sides, so its
resolution is `MEAN_RESOLUTION_MS`, what the client's extra work on `/predict` (its body, its
answer) came to here; a percentile's is a millisecond for Locust (it counts whole milliseconds)
plus the width of the histogram bucket each of the two server percentiles was interpolated in.
The spread is there because a busy machine delays the client's requests unevenly: `/health`'s
p95 then says little about the delay in `/predict`'s p95, and its mean less about `/predict`'s
mean, whose extra work is slowed down too.
"""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from app.config import Settings
from app.monitoring.alerts import query

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
MAX_USERS, MAX_SECONDS, MAX_RATE = 50, 120, 50  # a lesson's load, not a stress test
ROUTES = {"/predict": "POST", "/health": "GET"}
QUANTILES = (0.5, 0.95)
# The mean's resolution. The two means' gap, measured here: within 0.2 ms at 2 to 10 users on a
# quiet machine, 0.7 with both cores busy, 1.5 in a CI run where the client's own cost was 12.5 ms
# a request (what the client's spread, added to this, allows for).
MEAN_RESOLUTION_MS = 1.0
LOCUST_RESOLUTION_MS = 1.0  # Locust's percentiles are whole milliseconds


class LoadTestRefused(ValueError):
    """The load asked for is outside the bounds, or aimed somewhere other than this machine."""


@dataclass(frozen=True)
class RouteLatency:
    """One route's requests and latency (ms), as one side measured them."""

    requests: int
    failures: int
    mean: float  # exact on both sides: Locust adds up every time, the histogram keeps its sum
    p50: float
    p95: float
    fastest: float = math.nan  # Locust's quickest request; a histogram keeps no such figure


@dataclass(frozen=True)
class LoadTest:
    """What Locust saw and what the API recorded, route by route, for the same requests."""

    users: int
    rate: float
    seconds: int
    started: float  # Unix time of the last scrape before the load
    ended: float  # Unix time of the first scrape after it
    client: dict[str, RouteLatency]  # Locust
    server: dict[str, RouteLatency]  # the API's metrics, through Prometheus
    buckets: tuple[float, ...]  # the upper bounds (ms) of the API's latency histogram's buckets


def check_bounds(url: str, users: int, rate: float, seconds: int) -> None:
    """Refuse a load beyond the lesson's bounds or a host that is not this machine."""
    host = urlsplit(url).hostname
    if host not in LOOPBACK:
        raise LoadTestRefused(f"load-test this machine's API only (127.0.0.1), not {host!r}")
    for name, value, most in (
        ("users", users, MAX_USERS),
        ("rate", rate, MAX_RATE),
        ("seconds", seconds, MAX_SECONDS),
    ):
        if not 0 < value <= most:
            raise LoadTestRefused(f"{name} must be above 0 and at most {most}, not {value}")


def run_locust(
    url: str, users: int, rate: float, seconds: int, val_dir: Path, folder: Path
) -> Path:
    """Locust headless: all users at once, `seconds` long; returns its final statistics (JSON).
    Each user finishes the request it is in when time is up (`--stop-timeout`)."""
    stats = folder / "locust.json"
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--skip-log",
        "--host", url, "--users", str(users), "--spawn-rate", str(users),
        "--run-time", f"{seconds}s", "--stop-timeout", "5", "--rate", str(rate),
        "--val-dir", str(val_dir), "--json-file", str(stats.with_suffix("")),
        "--loglevel", "WARNING",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    # Locust exits 1 when a request failed: the statistics say which; anything else is Locust's.
    if done.returncode not in (0, 1) or not stats.exists():
        raise RuntimeError(f"locust failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    return stats


def percentile(times: dict[str, int], share: float) -> float:
    """The shortest time (ms) within which `share` of the requests finished, from Locust's counts
    of requests by time (whole milliseconds below 100 ms)."""
    total, seen = sum(times.values()), 0
    for milliseconds in sorted(times, key=float):
        seen += times[milliseconds]
        if seen >= share * total:
            return float(milliseconds)
    return math.nan


def read_locust(stats: Path) -> dict[str, RouteLatency]:
    """Locust's final statistics for each route."""
    entries = {entry["name"]: entry for entry in json.loads(stats.read_text())}
    return {
        route: locust_route(entry)
        for route, entry in entries.items()
        if route in ROUTES and entry["num_requests"]
    }


def locust_route(entry: dict) -> RouteLatency:
    """One route's entry of Locust's statistics."""
    p50, p95 = (percentile(entry["response_times"], q) for q in QUANTILES)
    return RouteLatency(
        entry["num_requests"],
        entry["num_failures"],
        entry["total_response_time"] / entry["num_requests"],
        p50,
        p95,
        fastest=entry["min_response_time"],
    )


def promql(prometheus: str, expression: str, at: float) -> float:
    """One PromQL expression's single value at time `at` (NaN when it has none)."""
    result = query(prometheus, expression, at)
    return float(result[0]["value"][1]) if result else float("nan")


def next_scrape(prometheus: str, after: float, timeout: float = 30) -> float:
    """Wait for Prometheus to scrape the API after Unix time `after`; that scrape's time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        scraped = promql(prometheus, 'timestamp(up{job="api"})', time.time())
        if scraped > after:
            return scraped
        time.sleep(0.5)
    raise TimeoutError(f"Prometheus at {prometheus} did not scrape the API in {timeout:.0f} s")


def bucket_bounds(prometheus: str, at: float) -> tuple[float, ...]:
    """The upper bounds (ms) of the latency histogram's buckets, as Prometheus has them."""
    bounds = 'count by (le) (api_request_duration_seconds_bucket{le!="+Inf"})'
    return tuple(sorted(1000 * float(one["metric"]["le"]) for one in query(prometheus, bounds, at)))


def read_prometheus(prometheus: str, started: float, ended: float) -> dict[str, RouteLatency]:
    """What the API's metrics say happened between two scrapes, route by route: requests,
    failures (status not 2xx), and from the latency histogram the mean and the 50th and 95th
    percentiles (interpolated within the buckets, as every Prometheus quantile is)."""

    def between(series: str, by: str = "") -> str:
        """The increase from one scrape to the other (a series born since: all of it)."""
        after = f"sum {by} ({series} @ {ended:.3f})"
        return f"(({after} - sum {by} ({series} @ {started:.3f})) or {after})"

    measured = {}
    for route, method in ROUTES.items():
        labels = f'route="{route}",method="{method}"'
        requests = promql(prometheus, between(f"api_requests_total{{{labels}}}"), ended)
        failed = between(f'api_requests_total{{{labels},status!~"2.."}}')
        buckets = between(f"api_request_duration_seconds_bucket{{{labels}}}", "by (le)")
        seconds = between(f"api_request_duration_seconds_sum{{{labels}}}")
        timed = between(f"api_request_duration_seconds_count{{{labels}}}")
        mean = 1000 * promql(prometheus, f"{seconds} / {timed}", ended)
        p50, p95 = (
            1000 * promql(prometheus, f"histogram_quantile({q}, {buckets})", ended)
            for q in QUANTILES
        )
        failures = promql(prometheus, failed, ended)
        measured[route] = RouteLatency(
            0 if math.isnan(requests) else int(requests),
            0 if math.isnan(failures) else int(failures),  # no failed request: no such series
            mean,
            p50,
            p95,
        )
    return measured


def run(settings: Settings, users: int = 4, rate: float = 10, seconds: int = 30) -> LoadTest:
    """Load the API at `settings.api_url` with Locust; read both sides over the same requests."""
    check_bounds(settings.api_url, users, rate, seconds)
    prometheus = settings.prometheus_url
    started = next_scrape(prometheus, time.time())  # what came before is in this scrape
    with tempfile.TemporaryDirectory(prefix="loadtest-") as folder:
        stats = run_locust(
            settings.api_url, users, rate, seconds, settings.data_dir / "val", Path(folder)
        )
        client = read_locust(stats)
    ended = next_scrape(prometheus, time.time())
    server = read_prometheus(prometheus, started, ended)
    buckets = bucket_bounds(prometheus, ended)
    return LoadTest(users, rate, seconds, started, ended, client, server, buckets)


def bucket_width(buckets: tuple[float, ...], milliseconds: float) -> float:
    """The width (ms) of the histogram's bucket that holds `milliseconds`."""
    for lower, upper in itertools.pairwise((0.0, *buckets)):
        if milliseconds <= upper:
            return upper - lower
    return math.inf


@dataclass(frozen=True)
class Agreement:
    """One figure of `/predict` from both sides, once the client's own cost is taken off."""

    figure: str  # mean, p50, p95
    locust: float
    client_cost: float  # Locust's minus Prometheus' on /health
    prometheus: float
    tolerance: float

    @property
    def gap(self) -> float:
        return self.locust - self.client_cost - self.prometheus

    @property
    def agrees(self) -> bool:
        return abs(self.gap) <= self.tolerance


def compare(test: LoadTest, route: str = "/predict", idle: str = "/health") -> list[Agreement]:
    """Locust's mean, p50 and p95 for `route` against Prometheus', the client's own cost on
    `idle` taken off, each with its tolerance (see the module's docstring)."""
    missing = [r for r in (route, idle) if r not in test.client or not test.server[r].requests]
    if missing:
        raise ValueError(f"no requests to {', '.join(missing)} on both sides: run it longer")
    compared = []
    for figure in ("mean", "p50", "p95"):
        client, server = getattr(test.client[route], figure), getattr(test.server[route], figure)
        idle_server = getattr(test.server[idle], figure)
        client_idle = getattr(test.client[idle], figure)
        cost = client_idle - idle_server
        spread = client_idle - test.client[idle].fastest  # the client's own, up to this figure
        if figure == "mean":
            resolution = MEAN_RESOLUTION_MS
        else:
            resolution = (
                LOCUST_RESOLUTION_MS
                + bucket_width(test.buckets, server)
                + bucket_width(test.buckets, idle_server)
            )
        compared.append(Agreement(figure, client, cost, server, resolution + spread))
    return compared
