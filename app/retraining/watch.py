"""The retraining watcher: `uvicorn app.retraining.watch:create_app --factory` (the stack runs it).

Two triggers start the same check (`app.retraining.run.retrain`):
- **data**: every `retrain_poll_seconds` it reads `data.dvc` as committed at git HEAD. When
  its md5 changes, it retrains, if the working tree holds that version (a half-done switch,
  as notebook 01 makes while it shows `dvc checkout`, is never trained: nothing was committed).
  The md5 it last checked is kept in state_dir, so a commit made while it was down is seen at
  its next start; on its very first start it only notes HEAD's version (training the data you
  start with is the notebooks' job, or `make train`'s).
- **alerts**: Alertmanager posts every notification to POST /alerts. Each alert is logged and
  counted; a firing one triggers the check at once (it retrains only if the data is new: drift
  brings no labels, a new data version does).

GET /metrics exports the outcome of the last retrain (from the history file, so retrains run by
hand with `make retrain` show too) and the alerts received; GET /status says what it watches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
from collections.abc import AsyncIterator, Iterator
from datetime import datetime

import yaml
from fastapi import FastAPI, Response
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from app.config import Settings, get_settings, load_params
from app.log import setup_json_logging
from app.monitoring.alert_log import Notification
from app.retraining.run import DECISIONS, FAILURES, RetrainBusy, read_history, retrain

log = logging.getLogger("app.retraining.watch")


def committed_md5(settings: Settings, path: str = "data.dvc") -> str | None:
    """The data md5 that git HEAD's data.dvc pins (None outside git or before a commit)."""
    done = subprocess.run(
        ["git", "show", f"HEAD:{path}"], cwd=settings.root, capture_output=True, text=True
    )
    return yaml.safe_load(done.stdout)["outs"][0]["md5"] if done.returncode == 0 else None


def working_md5(settings: Settings) -> str | None:
    """The md5 the working tree's data.dvc pins (None without one)."""
    spec = yaml.safe_load(settings.dvc_file.read_text()) if settings.dvc_file.exists() else None
    return spec["outs"][0]["md5"] if spec else None


class RetrainGauges(Collector):
    """The last retrain and the count of each decision, read from the history file."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        history = read_history(self.settings)
        last = history[-1] if history else None
        runs = CounterMetricFamily("retrain_runs", "Retrains, by decision", labels=["decision"])
        decision = GaugeMetricFamily(
            "retrain_last_decision", "1 for the decision of the last retrain", labels=["decision"]
        )
        for name in DECISIONS:
            runs.add_metric([name], sum(r["decision"] == name for r in history))
            decision.add_metric([name], float(last is not None and last["decision"] == name))
        yield runs
        yield decision
        started = datetime.fromisoformat(last["started_at"]).timestamp() if last else 0.0
        yield GaugeMetricFamily(
            "retrain_last_run_timestamp_seconds", "When the last retrain began", value=started
        )
        yield GaugeMetricFamily(
            "retrain_last_duration_seconds",
            "How long the last retrain took",
            value=last["seconds"] if last else 0.0,
        )


class Watcher:
    """Checks for new data on a timer or when told to; one check at a time."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.wake = asyncio.Event()
        self.trigger = "data"
        self.memory = settings.state_dir / "retraining" / "checked-md5"
        self.memory.parent.mkdir(parents=True, exist_ok=True)
        if not self.memory.exists():  # first start: what HEAD pins now is the baseline
            self.memory.write_text(committed_md5(settings) or "")
        self.state = "starting"

    @property
    def checked(self) -> str | None:
        """HEAD's md5 at the last check that ran (None: check whatever HEAD says)."""
        return self.memory.read_text() or None

    @checked.setter
    def checked(self, md5: str | None) -> None:
        self.memory.write_text(md5 or "")

    async def run(self) -> None:
        """Check at every wake-up (an alert) or every `retrain_poll_seconds`, while the app runs."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.settings.retrain_poll_seconds)
            self.wake.clear()
            await asyncio.to_thread(self.check)

    def poke(self, trigger: str) -> None:
        """Check now, whatever HEAD says (an alert)."""
        self.trigger, self.checked = trigger, None
        self.wake.set()

    def check(self) -> None:
        """Retrain when HEAD pins data not checked yet (and the working tree agrees)."""
        head = committed_md5(self.settings)
        if head is None or head == self.checked:
            self.state = f"watching HEAD's data.dvc ({head or 'not committed yet'})"
            return
        if working_md5(self.settings) != head:
            self.state = "waiting: the working tree's data.dvc is not HEAD's"
            return
        trigger, self.trigger = self.trigger, "data"
        self.state = f"retraining (trigger: {trigger})"  # until the record says what happened
        try:
            record = retrain(self.settings, load_params(self.settings.params_path), trigger=trigger)
            self.state = record.summary()
        except RetrainBusy as error:
            self.state = str(error)  # left unchecked: the next poll tries again
            return
        except FAILURES as error:
            self.state = f"retrain failed: {error}"
            log.error("retrain failed", extra={"error": str(error)})
        self.checked = head


def create_app(settings: Settings | None = None) -> FastAPI:
    """The watcher: polls git HEAD's data.dvc, takes Alertmanager's webhook, exports its metrics."""
    settings = settings or get_settings()
    setup_json_logging()
    registry = CollectorRegistry()
    registry.register(RetrainGauges(settings))
    alerts = Counter(
        "retrain_alerts_received",
        "Alerts Alertmanager sent the watcher",
        ["alertname", "status"],
        registry=registry,
    )
    watcher = Watcher(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(watcher.run())
        watcher.wake.set()  # a first check at start
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app = FastAPIOffline(title="Retraining watcher", description=__doc__, lifespan=lifespan)
    app.state.watcher = watcher

    @app.post("/alerts")
    async def receive(notification: Notification) -> dict[str, bool]:
        """Alertmanager's webhook: log and count each alert; a firing one triggers a check."""
        firing = [a for a in notification.alerts if a.status == "firing"]
        for alert in notification.alerts:
            name = alert.labels.get("alertname", "unknown")
            alerts.labels(name, alert.status).inc()
            log.warning("alert received", extra={"alertname": name, "status": alert.status})
        if firing:
            watcher.poke(f"alert:{firing[0].labels.get('alertname', 'unknown')}")
        return {"checking": bool(firing)}

    @app.get("/status")
    async def status() -> dict:
        """What the watcher watches, what it last did, and the last retrain record."""
        history = read_history(settings)
        return {"state": watcher.state, "last_retrain": history[-1] if history else None}

    @app.get("/metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
