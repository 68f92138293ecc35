"""A notebook's sandbox on the shared stack: what it changes is noted first, and given back.

Notebook 06 retrains from a clone of your repository, with a watcher of its own, against the
stack's registry, API and Alertmanager. Before it changes anything there it notes what it found
in `state_dir/sandboxes/<name>/ledger.json`: the registry's aliases and versions, then each
silence it creates. Its clone and its processes live in that folder too. `undo` gives all of it
back: the aliases as they were, the versions it registered deleted, its silences expired, its
processes stopped, the predictions it had the API store (and their labels) deleted, its folder
removed. Whatever stops the notebook, something runs `undo`: the
notebook's last section, a failing cell, the next run's start, `make pipeline` and
`make stack-down`.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import httpx
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sqlalchemy import delete
from sqlalchemy.exc import SQLAlchemyError

from app.config import Settings
from app.feedback import connect, database_url, labels, predictions
from app.processes import stop_group

log = logging.getLogger("app.sandbox")


class SandboxError(RuntimeError):
    """What a sandbox could not give back, and how to finish."""


class Sandbox:
    """One named sandbox of a stack: its folder, its ledger, and `undo`."""

    def __init__(self, settings: Settings, name: str):
        self.settings, self.name = settings, name
        self.folder = settings.sandboxes_dir / name
        self.ledger_file = self.folder / "ledger.json"

    @property
    def ledger(self) -> dict:
        return json.loads(self.ledger_file.read_text()) if self.ledger_file.exists() else {}

    def _write(self, ledger: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.ledger_file.write_text(json.dumps(ledger, indent=1))

    def open(self) -> list[str]:
        """Undo what an earlier run left (a crash, a killed kernel), then note the registry as it
        is now. Returns what was undone (empty after a clean end)."""
        undone = self.undo() if self.folder.exists() else []
        name, client = self.settings.model_name, self._client()
        self._write(
            {
                "model_name": name,
                "aliases": registry_aliases(client, name),
                "versions": registry_versions(client, name),
                "silences": [],
            }
        )
        return undone

    def silenced(self, silence_id: str) -> None:
        """Note an Alertmanager silence this sandbox created: `undo` expires it."""
        ledger = self.ledger
        self._write(ledger | {"silences": [*ledger.get("silences", []), silence_id]})

    def predicted(self, prediction_ids: list[str]) -> None:
        """Note predictions this sandbox had the API store: `undo` deletes them, labels and all."""
        ledger = self.ledger
        self._write(ledger | {"predictions": [*ledger.get("predictions", []), *prediction_ids]})

    def undo(self) -> list[str]:
        """Give back everything noted; return what was done. When MLflow or Alertmanager cannot
        be reached, raises SandboxError and keeps the ledger, so a later `undo` finishes."""
        done = [f"stopped {path.stem} (pid file {path.name})" for path in self._pid_files()
                if stop_group(path)]  # fmt: skip
        ledger = self.ledger
        try:
            if "model_name" in ledger:
                done += self._restore_registry(ledger)
            for silence_id in ledger.get("silences", []):
                done += expire_silence(self.settings, silence_id)
            done += forget_predictions(self.settings, ledger.get("predictions", []))
        except (MlflowException, httpx.HTTPError, SQLAlchemyError) as error:
            raise SandboxError(
                f"sandbox {self.name}: its processes are stopped, but the registry or a silence "
                f"could not be given back ({type(error).__name__}: {error}). With the stack up, "
                "the next run of the notebook, `make pipeline` or `make stack-down` gives back "
                "the rest (`make reset` starts over)"
            ) from error
        shutil.rmtree(self.folder, ignore_errors=True)
        done.append(f"removed {self.folder}")
        for line in done:
            log.info("sandbox %s: %s", self.name, line)
        return done

    def _pid_files(self) -> list[Path]:
        return sorted(self.folder.rglob("*.pid"))

    def _client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.settings.mlflow_uri)

    def _restore_registry(self, ledger: dict) -> list[str]:
        client, name, done = self._client(), ledger["model_name"], []
        if not client.search_registered_models(f"name = '{name}'"):
            return []
        before, now = ledger["aliases"], registry_aliases(client, name)
        for alias in sorted(before.keys() | now.keys()):
            if now.get(alias) == before.get(alias):
                continue
            if alias not in before:
                client.delete_registered_model_alias(name, alias)
                done.append(f"removed @{alias} (there was none)")
            else:
                client.set_registered_model_alias(name, alias, before[alias])
                done.append(f"@{alias} back to v{before[alias]}")
        added = sorted(set(registry_versions(client, name)) - set(ledger["versions"]), key=int)
        for version in added:
            client.delete_model_version(name, version)
        if added:
            done.append(f"deleted the versions it registered: {', '.join(added)}")
        return done


def registry_aliases(client: MlflowClient, name: str) -> dict[str, str]:
    """Alias -> version of a registered model (empty when it does not exist yet)."""
    try:
        return dict(client.get_registered_model(name).aliases)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return {}
        raise


def registry_versions(client: MlflowClient, name: str) -> list[str]:
    """The versions registered under `name`, as strings."""
    return sorted((v.version for v in client.search_model_versions(f"name = '{name}'")), key=int)


def expire_silence(settings: Settings, silence_id: str) -> list[str]:
    """Expire a silence unless it is over already; return what was done."""
    silence = f"{settings.alertmanager_url}/api/v2/silence/{silence_id}"
    found = httpx.get(silence, timeout=10)
    if found.status_code == 404 or found.json()["status"]["state"] == "expired":
        return []
    httpx.delete(silence, timeout=10).raise_for_status()
    return [f"expired silence {silence_id}"]


def forget_predictions(settings: Settings, prediction_ids: list[str]) -> list[str]:
    """Delete predictions, and their labels, from the API's feedback store."""
    if not prediction_ids:
        return []
    engine = connect(database_url(settings))
    try:
        with engine.begin() as connection:
            for column in (labels.c.prediction_id, predictions.c.id):
                connection.execute(delete(column.table).where(column.in_(prediction_ids)))
    finally:
        engine.dispose()
    return [f"deleted its {len(prediction_ids)} predictions and their labels from the store"]


def undo_all(settings: Settings) -> list[str]:
    """Undo every sandbox of this stack (what `make stack-down` and `make pipeline` run first)."""
    folder = settings.sandboxes_dir
    names = sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []
    return [line for name in names for line in Sandbox(settings, name).undo()]


def stop_all_processes(settings: Settings) -> list[str]:
    """Stop every process a sandbox of this stack started; return their pid files' names.
    Needs neither MLflow nor Alertmanager: what a stack that is down already can still do."""
    pid_files = sorted(settings.sandboxes_dir.rglob("*.pid"))
    return [path.name for path in pid_files if stop_group(path)]
