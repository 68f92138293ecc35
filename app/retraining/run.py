"""One retrain: when the pinned data version is new, train, log, gate and maybe promote.

"New" means the registry has not judged it yet: it is not the data of the champion, nor of any
version the gate promoted (since retired) or refused. Retraining the same data again would only
add runs (a watcher polls all day), so such a call records "skipped" and changes nothing;
`force` retrains anyway. Every call, skipped and failed ones too, appends one JSON record to
`state_dir/retraining/history.jsonl`: what the watcher exports to Prometheus.

A lock (`state_dir/retraining/lock`) lets one retrain run at a time. A second one does not
wait: it raises `RetrainBusy` at once, naming the holder, because a watcher will simply try
again at its next poll and a person would rather know than stare at a silent terminal.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from app.config import Params, Settings
from app.data.dvc import DvcError, holds_pinned, read_pin
from app.data.validate import DataValidationError, check
from app.registry import CHAMPION, promote_best, version_by_alias
from app.training.fit import FAMILIES
from app.training.tracking import MlflowUnavailable, setup_mlflow, train_and_log

log = logging.getLogger("app.retraining")
DECISIONS = ("promoted", "rejected", "skipped", "failed")


class RetrainBusy(RuntimeError):
    """Another retrain holds the lock; the message says which process and since when."""


@dataclass
class RetrainRecord:
    """What one retrain did: written as one JSON line, printed by the command."""

    trigger: str  # "manual", "data" (the watcher saw a new version), "alert:<name>"
    data_version: str
    data_md5: str
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    decision: str = "failed"  # one of DECISIONS
    reason: str = ""
    champion_before: str | None = None
    champion_after: str | None = None
    challenger: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        """The one line a person reads."""
        versions = f"champion v{self.champion_before} -> v{self.champion_after}"
        return f"retrain {self.decision} (data {self.data_version}, {versions}): {self.reason}"


def history_file(settings: Settings) -> Path:
    """Where every retrain appends its record (JSON lines)."""
    return settings.state_dir / "retraining" / "history.jsonl"


def read_history(settings: Settings) -> list[dict]:
    """Every record so far, oldest first (an empty list before the first retrain)."""
    path = history_file(settings)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def judged_data(client: MlflowClient, name: str, champion: str | None) -> dict[str, str]:
    """Data md5 -> what the registry made of it: every data version the gate has judged
    (promoted, even if since retired, or refused), and the champion's."""
    judged: dict[str, str] = {}
    for version in client.search_model_versions(f"name = '{name}'"):
        md5 = version.run_id and client.get_run(version.run_id).data.tags.get("data_md5")
        if not md5:
            continue  # no lineage: nothing to say about its data
        if version.version == champion:
            judged[md5] = f"trained the champion, v{version.version}"
        elif decision := version.tags.get("gate.decision"):
            outcome = "refused by the gate" if decision == "rejected" else "promoted once"
            judged.setdefault(md5, f"{outcome} as v{version.version}")
    return judged


@contextlib.contextmanager
def retrain_lock(settings: Settings) -> Iterator[None]:
    """Hold the retrain lock for the duration, or raise RetrainBusy at once."""
    path = settings.state_dir / "retraining" / "lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise RetrainBusy(
                f"another retrain is running ({handle.read().strip() or 'unknown holder'}); "
                "try again when it ends"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {datetime.now(UTC):%H:%M:%S} UTC")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)


def retrain(
    settings: Settings, params: Params, force: bool = False, trigger: str = "manual"
) -> RetrainRecord:
    """Retrain on the pinned data if the registry has not judged it yet; record the outcome.

    Raises RetrainBusy (nothing recorded) when another retrain runs. Any other failure is
    recorded as "failed" with the reason, then raised: registry and served model stay as they
    were, since nothing is registered before every model trained and logged.
    """
    with retrain_lock(settings):
        record = RetrainRecord(trigger=trigger, data_version="unknown", data_md5="")
        started = time.monotonic()
        try:
            pin = read_pin(settings.dvc_file)
            record.data_version, record.data_md5 = pin.version, pin.md5
            _retrain(settings, params, force, record)
        except Exception as error:
            record.decision, record.reason = "failed", f"{type(error).__name__}: {error}"
            raise
        finally:
            record.seconds = round(time.monotonic() - started, 2)
            path = history_file(settings)
            with path.open("a") as history:
                history.write(json.dumps(asdict(record)) + "\n")
            log.info(record.summary())
        return record


def _retrain(settings: Settings, params: Params, force: bool, record: RetrainRecord) -> None:
    """The steps, each with a progress line; fills in `record`."""
    setup_mlflow(settings)
    client, name = MlflowClient(), settings.model_name
    champion = version_by_alias(settings, CHAMPION)
    record.champion_before = record.champion_after = champion.version if champion else None
    judged = judged_data(client, name, record.champion_before).get(record.data_md5)
    if judged and not force:
        record.decision = "skipped"
        record.reason = f"data {record.data_version} was already judged: it {judged}"
        return
    log.info("1/4 validating data %s", record.data_version)
    if not holds_pinned(settings):
        raise DvcError(
            f"data/ in {settings.root} does not match data.dvc: run `dvc checkout` (or "
            "`python -m app.data version N` to switch versions) before retraining"
        )
    check(settings.data_dir, params.validation)
    for step, family in enumerate(FAMILIES, start=1):
        log.info("2/4 training %s (%d of %d)", family, step, len(FAMILIES))
        train_and_log(settings, params, family)
    log.info("3/4 registering the best run as challenger")

    def registered(run: mlflow.entities.Run, version: str) -> None:
        record.metrics = {k: v for k, v in run.data.metrics.items() if k.startswith("val_")}
        record.challenger = version
        log.info("4/4 gating v%s against the champion", version)

    decision = promote_best(settings, params, record.data_md5, registered)
    record.decision = "promoted" if decision.promoted else "rejected"
    record.reason = decision.reason
    if decision.promoted:
        record.champion_after = record.challenger


# What a retrain can fail on, with a message that names the problem (no traceback needed).
FAILURES = (
    MlflowUnavailable, DataValidationError, DvcError, MlflowException, LookupError, OSError
)  # fmt: skip
