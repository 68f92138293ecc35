"""The load test's users, for Locust: `python -m app.loadtest` runs them headless; to watch them
in Locust's own web page, `locust -f app/loadtest/locustfile.py --host http://127.0.0.1:8000`.

Each user is a client of the model API: it sends one val digit a request to `POST /predict`, and
one request in three asks `GET /health`, a route that does next to nothing: what a request costs
the client itself (enough of them to tell its 95th percentile). At most `--rate` requests a
second.
"""

from __future__ import annotations

import random
from functools import cache
from pathlib import Path

from locust import FastHttpUser, constant_throughput, events, task

from app.config import get_settings
from app.data import load_split


@events.init_command_line_parser.add_listener
def add_options(parser) -> None:
    parser.add_argument("--rate", type=float, default=10, help="requests a second, each user")
    parser.add_argument(
        "--val-dir",
        default=str(get_settings().data_dir / "val"),
        help="the digits to send (default: the val split)",
    )


@cache
def digits(folder: str) -> list[list[float]]:
    """The split's digits as rows of 64 values, read once for all users."""
    return load_split(Path(folder))[0].tolist()


class DigitsClient(FastHttpUser):
    """A client of the model API (FastHttpUser: the lighter of Locust's two HTTP clients)."""

    def wait_time(self) -> float:
        return constant_throughput(self.environment.parsed_options.rate)(self)

    @task(2)
    def predict(self) -> None:
        rows = digits(self.environment.parsed_options.val_dir)
        self.client.post("/predict", json={"instances": [random.choice(rows)]})

    @task(1)
    def health(self) -> None:
        self.client.get("/health")
