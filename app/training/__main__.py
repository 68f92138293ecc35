"""`python -m app.training [--family baseline|cnn ...] [--promote]`: train, log, and gate.

What the compose trainer runs; the notebooks call the same functions.
"""

from __future__ import annotations

import argparse
import logging
import sys

from mlflow.exceptions import MlflowException

from app.config import get_settings, load_params
from app.data.dvc import read_pin
from app.data.validate import DataValidationError
from app.log import setup_logging
from app.registry import promote_best
from app.training.fit import FAMILIES
from app.training.tracking import MlflowUnavailable, setup_mlflow, train_and_log

log = logging.getLogger("app.training")


def main(argv: list[str] | None = None) -> int:
    """`python -m app.training [--family F] [--promote]`: exit 3 if the gate refuses, 1 on error."""
    parser = argparse.ArgumentParser(prog="python -m app.training", description=__doc__)
    parser.add_argument("--family", choices=FAMILIES, action="append", help="default: all")
    parser.add_argument(
        "--promote", action="store_true", help="register the best run and run the gate"
    )
    args = parser.parse_args(argv)
    setup_logging()
    settings, params = get_settings(), load_params()
    try:
        setup_mlflow(settings)
        for family in args.family or FAMILIES:
            train_and_log(settings, params, family)
        if args.promote:
            decision = promote_best(settings, params, read_pin(settings.dvc_file).md5)
            return 0 if decision.promoted else 3
    except (MlflowUnavailable, DataValidationError, MlflowException) as error:
        log.error("error: %s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
