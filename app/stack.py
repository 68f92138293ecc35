"""`python -m app.stack up|down|status|reset|exec -- CMD`: the native stack, as processes.

Each service runs in its own process group with a pid file and a log under settings.state_dir;
`up` returns once every service answers its health endpoint. Starting twice is harmless.
`reset` stops the stack and deletes its state: the next `up` starts from scratch.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from app.config import Settings, get_settings
from app.log import setup_logging

log = logging.getLogger("app.stack")


class StackError(RuntimeError):
    """A service would not start; the message says which, why, and where its log is."""


@dataclass(frozen=True)
class Service:
    name: str
    command: list[str]
    port: int
    health_url: str
    url: str  # what a person opens
    env: dict[str, str] = field(default_factory=dict)
    # Pass the settings on as WORKBOOK_* variables (worked out at start, not when listing).
    inherits_settings: bool = False
    startup_seconds: float = 60


def admin_token(settings: Settings) -> str:
    """The API's admin token: from settings, else one made once and kept in state_dir."""
    if settings.admin_token:
        return settings.admin_token.get_secret_value()
    path = settings.state_dir / "admin-token"
    if not path.exists():
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24))
    return path.read_text().strip()


def settings_env(settings: Settings) -> dict[str, str]:
    """These settings as WORKBOOK_* variables, so a child process sees exactly them."""
    values = settings.model_dump(exclude={"admin_token"}, exclude_none=True)
    env = {f"WORKBOOK_{key.upper()}": str(value) for key, value in values.items()}
    return env | {"WORKBOOK_ADMIN_TOKEN": admin_token(settings)}


def services(settings: Settings) -> list[Service]:
    """The services of the native stack, in start order."""
    state = settings.state_dir / "mlflow"
    mlflow_url = f"http://{settings.host}:{settings.mlflow_port}"
    api_url = f"http://{settings.host}:{settings.api_port}"
    return [
        Service(
            name="mlflow",
            command=[
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--host",
                settings.host,
                "--port",
                str(settings.mlflow_port),
                "--workers",
                "1",  # sized for a 2-core laptop (the default is 4)
                "--backend-store-uri",
                f"sqlite:///{state / 'mlflow.db'}",
                "--artifacts-destination",
                str(state / "artifacts"),
                "--serve-artifacts",
            ],  # fmt: skip
            port=settings.mlflow_port,
            health_url=f"{mlflow_url}/health",
            url=mlflow_url,
            env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        ),
        Service(
            name="api",
            command=[
                sys.executable,
                "-m",
                "uvicorn",
                "app.serving.app:create_app",
                "--factory",
                "--host",
                settings.host,
                "--port",
                str(settings.api_port),
                "--workers",
                "1",
                "--no-access-log",  # the API writes its own JSON line per request
            ],  # fmt: skip
            port=settings.api_port,
            health_url=f"{api_url}/health",
            url=f"{api_url}/docs",
            inherits_settings=True,
        ),
    ]


def port_variable(service: Service) -> str:
    """The setting that moves a service to another port (`WORKBOOK_MLFLOW_PORT`, ...)."""
    return f"WORKBOOK_{service.name.upper()}_PORT"


def _pid_file(settings: Settings, service: Service) -> Path:
    return settings.state_dir / f"{service.name}.pid"


def log_file(settings: Settings, service: Service) -> Path:
    return settings.state_dir / f"{service.name}.log"


def is_healthy(service: Service) -> bool:
    try:
        return httpx.get(service.health_url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (for throwaway stacks: tests, benchmarks)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((host, port)) == 0


def running_pid(settings: Settings, service: Service) -> int | None:
    """The pid of our process for this service, if its pid file names a live process."""
    try:
        pid = int(_pid_file(settings, service).read_text())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    return pid


def start(settings: Settings, service: Service) -> bool:
    """Start a service unless it already answers; return True if this call started it."""
    if is_healthy(service):
        return False
    if running_pid(settings, service) is None and port_in_use(settings.host, service.port):
        raise StackError(
            f"{service.name}: port {service.port} is taken by another program"
            + (" (on macOS, usually AirPlay Receiver)" if service.port == 5000 else "")
            + f". Stop it, or move {service.name}: put {port_variable(service)}=<free port> "
            "in .env (every command reads it), then run make stack-up again"
        )
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    logs = log_file(settings, service)
    with logs.open("ab") as output:
        process = subprocess.Popen(
            service.command,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=os.environ
            | service.env
            | (settings_env(settings) if service.inherits_settings else {}),
            cwd=settings.state_dir,
            start_new_session=True,  # its own process group: `down` stops its workers too
        )
    _pid_file(settings, service).write_text(str(process.pid))
    deadline = time.monotonic() + service.startup_seconds
    while not is_healthy(service):
        if process.poll() is not None or time.monotonic() > deadline:
            stop(settings, service)
            tail = "\n".join(logs.read_text(errors="replace").splitlines()[-15:])
            raise StackError(f"{service.name} did not become healthy; end of {logs}:\n{tail}")
        time.sleep(0.5)
    return True


def stop(settings: Settings, service: Service, grace_seconds: float = 15) -> bool:
    """Stop a service's whole process group; return True if something was running."""
    pid = running_pid(settings, service)
    _pid_file(settings, service).unlink(missing_ok=True)
    if pid is None:
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        while time.monotonic() < deadline:
            _reap(pid)
            os.killpg(pid, 0)  # raises once the whole group is gone
            time.sleep(0.1)
        os.killpg(pid, signal.SIGKILL)
        _reap(pid)
    except ProcessLookupError:
        pass  # gone, as asked
    return True


def _reap(pid: int) -> None:
    """Collect the exit status if we started it, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def up(settings: Settings) -> list[Service]:
    """Start every service that is not running; return the ones this call started."""
    started = []
    for service in services(settings):
        if start(settings, service):
            started.append(service)
        log.info("%-8s %s", service.name, service.url)
    return started


def down(settings: Settings, only: list[Service] | None = None) -> None:
    for service in reversed(only if only is not None else services(settings)):
        if stop(settings, service):
            log.info("%-8s stopped", service.name)


def reset(settings: Settings) -> None:
    """Start over: stop the stack and delete its state (MLflow runs, registry, logs, token)."""
    down(settings)
    shutil.rmtree(settings.state_dir, ignore_errors=True)
    log.info(
        "removed %s: the next `make stack-up` starts with an empty registry", settings.state_dir
    )


def status(settings: Settings) -> list[tuple[str, str, str]]:
    """(name, state, url) per service; state is 'healthy', 'starting/unhealthy' or 'stopped'."""
    rows = []
    for service in services(settings):
        if is_healthy(service):
            state = "healthy"
        elif running_pid(settings, service):
            state = "starting/unhealthy"
        else:
            state = "stopped"
        rows.append((service.name, state, service.url))
    return rows


@contextlib.contextmanager
def stack_running(settings: Settings) -> Iterator[None]:
    """Make sure the stack runs for the duration; stop afterwards only what this started."""
    started = up(settings)
    try:
        yield
    finally:
        down(settings, only=started)


def main(argv: list[str] | None = None) -> int:
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
                log.info("%-8s %-18s %s", *row)
        else:
            with stack_running(settings):
                return subprocess.run(args.command).returncode
    except StackError as error:
        log.error("error: %s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
