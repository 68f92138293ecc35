"""Logging set-up, called explicitly by entry points (importing app never configures logging)."""

from __future__ import annotations

import logging
import os

CHATTY_LIBRARIES = ("httpx", "httpcore", "urllib3", "alembic", "papermill")


def setup_logging(level: int = logging.INFO) -> None:
    """Plain, readable lines on stderr for command-line tools."""
    logging.basicConfig(level=level, format="%(message)s", force=True)
    quiet_libraries()


def quiet_libraries() -> None:
    """Warnings only from libraries whose INFO lines drown what matters (a line per request)."""
    for name in CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
    quiet_mlflow()


def quiet_mlflow() -> None:
    """Keep MLflow's warnings, drop its chatter: progress bars, "View run" links, INFO lines.

    A notebook's output and a service's log then hold only what the caller caused.
    (Environment variables, not `mlflow.environment_variables`: importing MLflow takes seconds.)
    """
    os.environ["MLFLOW_LOGGING_LEVEL"] = "WARNING"  # read when MLflow is first imported
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # ... and if it was imported already
