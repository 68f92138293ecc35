"""`python -m app.data validate | ensure | version N | build N DIR | shifted [--fresh] DIR`,
and `python -m app.data field`: the labelled inputs of the API's store as the next version."""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from pathlib import Path

from app.config import get_settings, load_params
from app.data.build import build_version, fresh_shifted_batch, shifted_batch, write_split
from app.data.dvc import DataVersionMismatch, DvcError, ensure_data, switch_version
from app.data.field import FieldError, make_field_version
from app.data.validate import DataValidationError, validate
from app.log import setup_logging

log = logging.getLogger("app.data")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line: `version N`, `ensure`, `validate`, `build` and their options."""
    parser = argparse.ArgumentParser(prog="python -m app.data", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("validate", help="check a data folder; exit 1 on any problem")
    check.add_argument("data_dir", nargs="?", type=Path, help="default: the project's data/")
    commands.add_parser("ensure", help="pull data.dvc's version, or rebuild, verify and push it")
    switch = commands.add_parser("version", help="switch data/ to a version and record it")
    switch.add_argument("version", help="a version from params.yaml, e.g. 2 or v2")
    build = commands.add_parser("build", help="write a version into a new folder")
    build.add_argument("version")
    build.add_argument("out_dir", type=Path)
    shifted = commands.add_parser("shifted", help="write the drifted batch into a new folder")
    shifted.add_argument(
        "--fresh", action="store_true", help="the batch of shift.fresh_seed, to test models on"
    )
    shifted.add_argument("out_dir", type=Path)
    field = commands.add_parser(
        "field", help="the next version: data.dvc's plus the labelled inputs of the API's store"
    )
    source = field.add_mutually_exclusive_group()
    source.add_argument("--store", help="the store's database URL (default: the API's setting)")
    source.add_argument(
        "--api", help="read the labels through this API instead (GET /admin/labels: compose)"
    )
    field.add_argument(
        "--no-commit", action="store_true", help="leave data.dvc uncommitted (default: commit it)"
    )
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    """Carry out one command; its exit code."""
    settings, params = get_settings(), load_params()
    if args.command == "validate":
        report = validate(args.data_dir or settings.data_dir, params.validation)
        (log.info if report.ok else log.error)(report.summary())
        return 0 if report.ok else 1
    if args.command == "ensure":
        done = ensure_data(settings, params)
        log.info("data/ is at the version data.dvc pins (%s)", done)
    elif args.command == "version":
        pin = switch_version(settings, params, args.version)
        log.info("data/ is now %s (%s, %d files), pushed to the remote.", *vars(pin).values())
        log.info("Record it in git: git add data.dvc && git commit -m 'data: %s'", pin.version)
    elif args.command == "build":
        build_version(params.data, args.version, args.out_dir)
        log.info("wrote %s to %s", args.version, args.out_dir)
    elif args.command == "shifted":
        batch = fresh_shifted_batch(params.data) if args.fresh else shifted_batch(params.data)
        write_split(batch, args.out_dir)
        log.info("wrote the %sdrifted batch to %s", "fresh " * args.fresh, args.out_dir)
    elif args.command == "field":
        made = make_field_version(settings, params, args.store, args.api)
        log.info("%s", made.summary())
        if not args.no_commit:  # only data.dvc: whatever else is staged stays out of it
            git = ["git", "commit", "--quiet", "-m", made.commit_message(), "--", "data.dvc"]
            committed = subprocess.run(git, cwd=settings.root, capture_output=True, text=True)
            if committed.returncode != 0:
                log.error("data.dvc is ready, but `git commit` failed: %s", committed.stderr)
                return 1
            log.info("committed data.dvc: %s", made.commit_message())
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m app.data ...`: errors are named, with exit code 1."""
    setup_logging()
    try:
        return run(parse_args(argv))
    except (
        DataValidationError,
        DataVersionMismatch,
        DvcError,
        FieldError,
        ValueError,
    ) as error:
        log.error("error: %s", error)
        return 1


if __name__ == "__main__":
    sys.exit(main())
