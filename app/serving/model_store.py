"""The served model: loaded from the registry's @champion, swapped atomically when it moves."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from app.config import Settings
from app.monitoring.drift import DriftMonitor, DriftReference
from app.registry import CHALLENGER, CHAMPION
from app.serving.rollout import (
    CHALLENGER_ROLE,
    CHAMPION_ROLE,
    STOPPED,
    CanaryJudge,
    Rollout,
    canary_serves,
)
from app.serving.telemetry import Metrics
from app.training.models import Classifier

log = logging.getLogger("app.serving")


@dataclass(frozen=True)
class ServedModel:
    """One loaded model version and what /model says about it. Never mutated: swapped whole."""

    name: str
    version: str
    run_id: str
    data_version: str
    metrics: dict[str, float]
    loaded_at: datetime
    classifier: Classifier
    runtime: str  # what computes its answers: onnxruntime, pytorch or scikit-learn
    # Its drift reference and the window of inputs it answered (None: logged without one).
    drift: DriftMonitor | None


class ModelStore:
    """Holds the current model; `refresh` loads a new champion off the request path.

    A request reads `store.current` once and keeps that object, so a swap never changes the
    model under a request in flight. A failed load, or a registry that does not answer,
    leaves the current model serving. The same for `@challenger` (app/serving/rollout.py): at
    most two models in memory, the champion and one challenger.
    """

    def __init__(self, settings: Settings, metrics: Metrics):
        self.settings, self.metrics = settings, metrics
        self.client = MlflowClient(
            tracking_uri=settings.mlflow_uri, registry_uri=settings.mlflow_uri
        )
        self.current: ServedModel | None = None
        self.last_problem: str | None = "no model loaded yet"
        self._refreshing = threading.Lock()  # not an asyncio lock: tied to no event loop
        self.challenger: ServedModel | None = None
        self.rollout: Rollout | None = None
        self.judge = CanaryJudge(settings)
        # The challengers this API rolled back, as version/run: a number MLflow may give again
        # once that version is deleted (a sandbox's undo) names another model then.
        self._stopped: set[str] = set()

    async def refresh(self) -> bool:
        """Load the champion if it is not what we serve; True when a new model was swapped in."""
        return await asyncio.to_thread(self.refresh_now)

    def refresh_now(self) -> bool:
        """`refresh`, blocking: runs in a worker thread, never on the event loop."""
        with self._refreshing:  # one check-and-load at a time, whatever triggered it
            try:
                version = self._champion_version()
            except Exception as error:  # noqa: BLE001 (any failure here: keep serving)
                self.last_problem = f"registry unreachable at {self.settings.mlflow_uri}: {error}"
                log.warning(
                    "champion check failed; serving what we have", extra={"error": str(error)}
                )
                return False
            if version is None:
                self.last_problem = (
                    f"no model has the alias @{CHAMPION} in {self.settings.model_name!r} yet: "
                    "train and promote one (make train)"
                )
                return False
            self._refresh_challenger(version)
            if self.current and self.current.version == version:
                return False
            try:
                loaded = self._load(version)
            except Exception as error:  # noqa: BLE001 (a bad model must not take the API down)
                self.metrics.model_loads.labels("failure").inc()
                self.last_problem = f"loading version {version} failed: {error}"
                log.error(
                    "model load failed; serving what we have",
                    extra={"version": version, "error": str(error)},
                )
                return False
            previous, self.current = self.current, loaded  # the swap: one assignment
            self.last_problem = None
            self.metrics.model_loads.labels("success").inc()
            self.metrics.served(loaded)
            log.info(
                "model swapped in",
                extra={"version": version, "previous": previous.version if previous else None},
            )
            return True

    async def poll(self) -> None:
        """Check @champion every `api_poll_seconds`, for as long as the API runs."""
        while True:
            await self.refresh()
            await asyncio.sleep(self.settings.api_poll_seconds)

    def _champion_version(self) -> str | None:
        found = self._aliased(CHAMPION)
        return None if found is None else str(found.version)

    def _aliased(self, alias: str):
        try:
            return self.client.get_model_version_by_alias(self.settings.model_name, alias)
        except mlflow.exceptions.MlflowException as error:
            if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise

    def _refresh_challenger(self, champion: str) -> None:
        """Follow @challenger: load it (unless it is the champion, or stopped), read its rollout
        tags at every check. A failure leaves things as they were."""
        try:
            found = self._aliased(CHALLENGER)
            version = None if found is None else str(found.version)
            if (
                version is None
                or version == champion
                or f"{version}/{found.run_id}" in self._stopped
            ):
                self._set_challenger(None, None)
                return
            rollout = Rollout.from_tags(dict(found.tags or {}), self.settings.rollout_share)
            if rollout.stopped:
                self._set_challenger(None, None)
                return
            loaded = self.challenger
            if loaded is None or (loaded.version, loaded.run_id) != (version, found.run_id):
                loaded = self._load(version)
                log.info("challenger loaded", extra={"version": version, "mode": rollout.mode})
            self._set_challenger(loaded, rollout)
        except Exception as error:  # noqa: BLE001 (the champion serves whatever happens here)
            log.warning("challenger check failed", extra={"error": str(error)})

    def _set_challenger(self, model: ServedModel | None, rollout: Rollout | None) -> None:
        if (model and model.version) != (self.challenger and self.challenger.version):
            self.judge.reset()
        self.challenger, self.rollout = model, rollout  # read together by `pick`: see there
        self.metrics.challenger(model.version if model else None, rollout)

    def pick(self, client_id: str | None) -> tuple[ServedModel | None, str]:
        """The model that answers this client, and its role."""
        champion, challenger, rollout = self.current, self.challenger, self.rollout
        if challenger and rollout and canary_serves(rollout, client_id, challenger.version):
            return challenger, CHALLENGER_ROLE
        return champion, CHAMPION_ROLE

    def observe(self, role: str, ok: bool, seconds: float) -> None:
        """Count a request against its role; roll the canary back when the rule says so."""
        challenger = self.challenger
        if challenger is None or self.rollout is None or self.rollout.mode != "canary":
            return
        reason = self.judge.observe(role, ok, seconds)
        if reason:
            self.stop(challenger, reason)

    def observe_label(self, version: str, correct: bool) -> None:
        """Count a label against the role of the version that made the prediction."""
        challenger, champion = self.challenger, self.current
        if challenger is None or self.rollout is None or self.rollout.mode != "canary":
            return
        if version == challenger.version:
            reason = self.judge.observe_label(CHALLENGER_ROLE, correct)
        elif champion and version == champion.version:
            reason = self.judge.observe_label(CHAMPION_ROLE, correct)
        else:
            return
        if reason:
            self.stop(challenger, reason)

    def stop(self, challenger: ServedModel, reason: str) -> None:
        """Roll the canary back: at once here, then on the version's tags for every replica."""
        version, key = challenger.version, f"{challenger.version}/{challenger.run_id}"
        if key in self._stopped:
            return
        self._stopped.add(key)
        self._set_challenger(None, None)
        self.metrics.rollbacks.inc()
        log.error("canary rolled back", extra={"challenger_version": version, "reason": reason})
        threading.Thread(target=self._tag_stopped, args=(version, reason), daemon=True).start()

    def _tag_stopped(self, version: str, reason: str) -> None:
        try:
            self.client.set_model_version_tag(self.settings.model_name, version, STOPPED, reason)
        except Exception as error:  # noqa: BLE001 (this API has stopped it already)
            log.warning("could not tag the rollback", extra={"error": str(error)})

    def _load(self, version: str) -> ServedModel:
        name = self.settings.model_name
        # The runtime and threads are load-time choices of the model (DigitsModel.load_context)
        config = {
            "runtime": self.settings.api_model_runtime,
            "runtime_threads": self.settings.api_threads,
        }
        model = mlflow.pyfunc.load_model(f"models:/{name}/{version}", model_config=config)
        if "torch" in sys.modules:  # a CNN brought torch in (a baseline never imports it)
            import torch

            torch.set_num_threads(self.settings.api_threads)
        run = self.client.get_run(model.metadata.run_id)
        python_model = model.unwrap_python_model()
        drift = None
        if not self.settings.api_drift_window:
            log.info("no drift window (api_drift_window false)", extra={"version": version})
        elif python_model.drift_reference:  # loaded and swapped with the model it belongs to
            drift = DriftMonitor(DriftReference.load(Path(python_model.drift_reference)))
        else:
            log.warning("model has no drift reference: no drift score", extra={"version": version})
        # The API validates input itself; it calls the classifier directly, skipping the
        # pyfunc layer's per-call DataFrame and schema work that a 1-digit request pays for.
        return ServedModel(
            name=name,
            version=version,
            run_id=run.info.run_id,
            data_version=run.data.tags.get("data_version", "unknown"),
            metrics={k: v for k, v in run.data.metrics.items() if k.startswith("val_")},
            loaded_at=datetime.now(UTC),
            classifier=python_model.classifier,
            runtime=python_model.runtime,
            drift=drift,
        )
