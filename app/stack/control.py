"""Running the native stack's services: one process group each, a pid file and a log under
settings.state_dir; a service is up once it answers its health endpoint."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx

from app.config import Settings
from app.poll import wait_for
from app.processes import live_pid, stop_group, write_pid
from app.stack import services as table
from app.stack.services import Service, port_variable, services

log = logging.getLogger("app.stack")


class StackError(RuntimeError):
    """A service would not start; the message says which, why, and where its log is."""


def _pid_file(settings: Settings, service: Service) -> Path:
    return settings.state_dir / f"{service.name}.pid"


def log_file(settings: Settings, service: Service) -> Path:
    """Where a service of this stack writes its log."""
    return settings.state_dir / f"{service.name}.log"


def is_healthy(service: Service) -> bool:
    """Whether the service answers its health URL."""
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
    """Whether something listens on host:port."""
    with socket.socket() as probe:
        return probe.connect_ex((host, port)) == 0


def running_pid(settings: Settings, service: Service) -> int | None:
    """The pid of our process for this service, if its pid file names a live process."""
    return live_pid(_pid_file(settings, service))


def start(settings: Settings, service: Service) -> bool:
    """Start a service unless it already answers; return True if this call started it."""
    if is_healthy(service):
        return False
    if service.command is None:
        raise StackError(f"{service.name} is not installed: {service.install_hint}")
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
            env=os.environ | service.env | (service.prepare() if service.prepare else {}),
            cwd=settings.state_dir,
            start_new_session=True,  # its own process group: `down` stops its workers too
        )
    write_pid(_pid_file(settings, service), process.pid)

    def healthy() -> bool:
        if process.poll() is not None:
            raise StackError(f"{service.name} exited with {process.returncode}")
        return is_healthy(service)

    try:
        wait_for(healthy, service.startup_seconds, what=f"{service.name} to answer")
    except (StackError, TimeoutError) as error:
        stop(settings, service)
        tail = "\n".join(logs.read_text(errors="replace").splitlines()[-15:])
        raise StackError(
            f"{service.name} did not become healthy ({error}); end of {logs}:\n{tail}"
        ) from None
    return True


def stop(settings: Settings, service: Service, grace_seconds: float = 15) -> bool:
    """Stop a service's whole process group; return True if something was running."""
    return stop_group(_pid_file(settings, service), grace_seconds)


def up(settings: Settings) -> list[Service]:
    """Start every service that is not running; return the ones this call started."""
    started = []
    for service in services(settings):
        if service.command is None and service.optional:
            log.info("%-12s not installed: %s", service.name, service.install_hint)
            continue
        if start(settings, service):
            started.append(service)
        log.info("%-12s %s", service.name, service.url)
    return started


def down(settings: Settings, only: list[Service] | None = None) -> None:
    """Stop the stack's services (or `only` these), after what its sandboxes changed is given
    back and every process they started is stopped (notebook 06's watcher, for one)."""
    give_back_sandboxes(settings)
    for service in reversed(only if only is not None else services(settings)):
        if stop(settings, service):
            log.info("%-12s stopped", service.name)


def give_back_sandboxes(settings: Settings) -> None:
    """Undo every sandbox while MLflow and Alertmanager still answer; else stop their
    processes only (the next run of their notebook gives the rest back)."""
    if not any(settings.sandboxes_dir.glob("*")):
        return
    from app import sandbox  # MLflow's client loads only when there is something to give back

    needed = [table.service(settings, name) for name in ("mlflow", "alertmanager")]
    if all(map(is_healthy, needed)):
        sandbox.undo_all(settings)
    else:
        for name in sandbox.stop_all_processes(settings):
            log.info("sandbox: stopped the process of %s", name)


def reset(settings: Settings) -> None:
    """Start over: stop the stack and delete its state (MLflow runs, registry, logs, token)."""
    down(settings)
    shutil.rmtree(settings.state_dir, ignore_errors=True)
    log.info(
        "removed %s: the next `make stack-up` starts with an empty registry", settings.state_dir
    )


def status(settings: Settings) -> list[tuple[str, str, str]]:
    """(name, state, url) per service; state is 'healthy', 'starting/unhealthy', 'stopped' or
    'not installed' (then the url says how to get it)."""
    rows = []
    for service in services(settings):
        if service.command is None:
            rows.append((service.name, "not installed", service.install_hint))
            continue
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


@contextlib.contextmanager
def running(settings: Settings, *names: str) -> Iterator[list[Service]]:
    """Run these services of the stack (by name) for a block: start what is not running, and
    stop afterwards only what this started. What tests and scripts use to have one server."""
    wanted = [table.service(settings, name) for name in names]
    started = [s for s in wanted if start(settings, s)]
    try:
        yield wanted
    finally:
        for s in reversed(started):
            stop(settings, s)
