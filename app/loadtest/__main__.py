"""`python -m app.loadtest [--users N --rate R --seconds S]`: load the native API with Locust,
then log what Locust saw beside what Prometheus recorded for the same requests."""

from __future__ import annotations

import argparse
import logging
import sys

import httpx

from app.config import get_settings
from app.loadtest import LoadTestRefused, compare, run
from app.log import setup_logging

log = logging.getLogger("app.loadtest")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.loadtest", description=__doc__)
    parser.add_argument("--users", type=int, default=4, help="concurrent clients (at most 50)")
    parser.add_argument("--rate", type=float, default=10, help="requests a second, each user")
    parser.add_argument("--seconds", type=int, default=30, help="how long (at most 120)")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        result = run(get_settings(), args.users, args.rate, args.seconds)
    except (LoadTestRefused, TimeoutError, httpx.HTTPError) as error:
        log.error("%s", error)  # a refused load, or no Prometheus to ask: `make stack-up`
        return 1
    log.info("%d users x %g req/s for %d s", result.users, result.rate, result.seconds)
    for route in result.client:
        for side, measured in (("locust", result.client), ("prometheus", result.server)):
            m = measured[route]
            log.info(
                "%-8s %-10s %6d requests, %d failed, mean %5.2f ms, p50 %5.2f ms, p95 %5.2f ms",
                route, side, m.requests, m.failures, m.mean, m.p50, m.p95,
            )  # fmt: skip
    try:
        compared = compare(result)
    except ValueError as error:
        log.error("%s", error)
        return 1
    for row in compared:
        log.info(
            "/predict %-4s locust %5.2f - client's cost %5.2f = %5.2f, prometheus %5.2f: "
            "%s (within %.2f ms)",
            row.figure, row.locust, row.client_cost, row.locust - row.client_cost,
            row.prometheus, "agree" if row.agrees else "DISAGREE", row.tolerance,
        )  # fmt: skip
    same = all(result.client[r].requests == result.server[r].requests for r in result.client)
    if not same:
        log.error("Locust and Prometheus counted different requests: was other traffic sent?")
    return 0 if same and all(row.agrees for row in compared) else 1


if __name__ == "__main__":
    sys.exit(main())
