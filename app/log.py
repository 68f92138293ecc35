"""Logging set-up, called explicitly by entry points (importing app never configures logging)."""

from __future__ import annotations

import logging

CHATTY_LIBRARIES = ("httpx", "httpcore", "urllib3", "alembic")


def setup_logging(level: int = logging.INFO) -> None:
    """Plain, readable lines on stderr for command-line tools."""
    logging.basicConfig(level=level, format="%(message)s", force=True)
    for name in CHATTY_LIBRARIES:  # a line per HTTP request drowns what matters
        logging.getLogger(name).setLevel(logging.WARNING)
