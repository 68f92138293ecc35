"""Logging set-up, called explicitly by entry points (importing app never configures logging)."""

from __future__ import annotations

import logging


def setup_logging(level: int = logging.INFO) -> None:
    """Plain, readable lines on stderr for command-line tools."""
    logging.basicConfig(level=level, format="%(message)s", force=True)
