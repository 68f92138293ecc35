"""`python -m app.stack up|down|status|reset|exec -- CMD`: the native stack, as processes."""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys

from app.config import get_settings
from app.log import setup_logging
from app.stack import StackError, down, reset, stack_running, status, up

log = logging.getLogger("app.stack")


def main(argv: list[str] | None = None) -> int:
    """`python -m app.stack up|down|status|reset|exec -- CMD`; exit 1 on a StackError."""
    parser = argparse.ArgumentParser(prog="python -m app.stack", description=__doc__)
    parser.add_argument("action", choices=["up", "down", "status", "reset", "exec"])
    parser.add_argument("command", nargs="*", help="with exec: the command to run (after --)")
    args = parser.parse_args(argv)
    setup_logging()
    settings = get_settings()
    try:
        if args.action == "up":
            up(settings)
        elif args.action == "down":
            down(settings)
        elif args.action == "reset":
            reset(settings)
        elif args.action == "status":
            for row in status(settings):
                log.info("%-12s %-18s %s", *row)
        else:
            with stack_running(settings):
                return subprocess.run(args.command).returncode
    except StackError as error:
        log.error("error: %s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
