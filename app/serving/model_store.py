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
from app.registry import CHAMPION
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
    # Its drift reference and the window of inputs it answered (None: logged without one).
    drift: DriftMonitor | None


class ModelStore:
    """Holds the current model; `refresh` loads a new champion off the request path.

    A request reads `store.current` once and keeps that object, so a swap never changes the
    model under a request in flight. A failed load, or a registry that does not answer,
    leaves the current model serving.
    """

    def __init__(self, settings: Settings, metrics: Metrics):
        self.settings, self.metrics = settings, metrics
        self.client = MlflowClient(
            tracking_uri=settings.mlflow_uri, registry_uri=settings.mlflow_uri
        )
        self.current: ServedModel | None = None
        self.last_problem: str | None = "no model loaded yet"
        self._refreshing = threading.Lock()  # not an asyncio lock: tied to no event loop

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
            self.metrics.served(loaded.name, loaded.version, loaded.run_id)
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
        try:
            found = self.client.get_model_version_by_alias(self.settings.model_name, CHAMPION)
            return str(found.version)  # an int from MLflow's SQL store used without a server
        except mlflow.exceptions.MlflowException as error:
            if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise

    def _load(self, version: str) -> ServedModel:
        name = self.settings.model_name
        model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
        if "torch" in sys.modules:  # a CNN brought torch in (a baseline never imports it)
            import torch

            torch.set_num_threads(self.settings.api_threads)
        run = self.client.get_run(model.metadata.run_id)
        python_model = model.unwrap_python_model()
        drift = None
        if python_model.drift_reference:  # loaded and swapped with the model it belongs to
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
            drift=drift,
        )
