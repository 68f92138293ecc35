"""`python -m app.retraining [--force]`: retrain if the pinned data version is new.
`python -m app.retraining watch`: the watcher service (what the native stack runs).
`python -m app.retraining promote`: move @champion to @challenger on its live evidence.

Exit codes: 0 promoted or skipped (nothing to do), 3 the gate refused the new model,
1 a failure (named; registry and served model unchanged), 75 another retrain is running.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict

import httpx
import uvicorn
from mlflow.exceptions import MlflowException

from app.config import get_settings, load_params
from app.log import setup_logging
from app.retraining.promote import promote_on_evidence
from app.retraining.run import FAILURES, RetrainBusy, read_history, retrain

log = logging.getLogger("app.retraining")
EXIT = {"promoted": 0, "skipped": 0, "rejected": 3}


def main(argv: list[str] | None = None) -> int:
    """`python -m app.retraining [once|watch]`: exit 0, 3 (refused), 1 (failed) or 75 (busy)."""
    parser = argparse.ArgumentParser(prog="python -m app.retraining", description=__doc__)
    parser.add_argument("action", nargs="?", choices=["once", "watch", "promote"], default="once")
    parser.add_argument("--force", action="store_true", help="retrain data already judged")
    args = parser.parse_args(argv)
    settings = get_settings()
    if args.action == "watch":
        uvicorn.run(
            "app.retraining.watch:create_app",
            factory=True,
            host=settings.host,
            port=settings.retrainer_port,
            access_log=False,
        )
        return 0
    setup_logging()
    if args.action == "promote":
        try:
            promoted, reason = promote_on_evidence(settings, load_params())
        except (httpx.HTTPError, MlflowException) as error:
            log.error("promotion failed: %s", error)
            return 1
        log.info("%s: %s", "promoted" if promoted else "not promoted", reason)
        return 0 if promoted else 3
    try:
        record = retrain(settings, load_params(), force=args.force)
    except RetrainBusy as error:
        log.error("%s", error)
        return 75
    except FAILURES as error:
        log.error("retrain failed: %s", error)
        sys.stdout.write(json.dumps(read_history(settings)[-1]) + "\n")
        return 1
    sys.stdout.write(json.dumps(asdict(record)) + "\n")  # the record, for scripts and CI
    return EXIT[record.decision]


if __name__ == "__main__":
    sys.exit(main())
