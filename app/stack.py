"""`python -m app.stack up|down|status|reset|exec -- CMD`: the native stack, as processes.

MLflow, the model API, the retraining watcher, Prometheus, Alertmanager and the alert log;
Grafana too when it is installed. Each service runs in its own process group with a pid file
and a log under settings.state_dir; `up` returns once every service answers its health
endpoint. Starting twice is harmless. `reset` stops the stack and deletes its state: the next
`up` starts from scratch. Prometheus and Alertmanager read copies of compose/'s configs with
this stack's addresses.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from pydantic import SecretStr

from app.config import REPO_ROOT, Settings, get_settings
from app.log import setup_logging
from app.processes import live_pid, stop_group

log = logging.getLogger("app.stack")
COMPOSE = REPO_ROOT / "compose"


class StackError(RuntimeError):
    """A service would not start; the message says which, why, and where its log is."""


@dataclass(frozen=True)
class Service:
    name: str
    command: list[str] | None  # None: its program is not installed (see install_hint)
    port: int
    health_url: str
    url: str  # what a person opens
    env: dict[str, str] = field(default_factory=dict)
    # Run at start, not when listing: writes config files, returns more environment.
    prepare: Callable[[], dict[str, str]] | None = None
    startup_seconds: float = 60
    install_hint: str = ""
    optional: bool = False  # when not installed, `up` goes on without it


def kept_secret(settings: Settings, name: str, configured: SecretStr | None) -> str:
    """A secret from settings, else one made once and kept in state_dir (mode 600)."""
    if configured:
        return configured.get_secret_value()
    path = settings.state_dir / name
    if not path.exists():
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24))
    return path.read_text().strip()


def admin_token(settings: Settings) -> str:
    """The API's admin token (`WORKBOOK_ADMIN_TOKEN`, else `.stack/admin-token`)."""
    return kept_secret(settings, "admin-token", settings.admin_token)


def grafana_password(settings: Settings) -> str:
    """Grafana's admin password (`WORKBOOK_GRAFANA_ADMIN_PASSWORD`, else in state_dir)."""
    return kept_secret(settings, "grafana-admin-password", settings.grafana_admin_password)


def settings_env(settings: Settings) -> dict[str, str]:
    """These settings as WORKBOOK_* variables, so a child process sees exactly them."""
    values = settings.model_dump(
        exclude={"admin_token", "grafana_admin_password"}, exclude_none=True
    )
    env = {f"WORKBOOK_{key.upper()}": str(value) for key, value in values.items()}
    return env | {"WORKBOOK_ADMIN_TOKEN": admin_token(settings)}


def find_program(*names: str) -> str | None:
    """The first of these programs on the PATH (Debian and Homebrew name some differently)."""
    return next(filter(None, map(shutil.which, names)), None)


def compose_addresses(settings: Settings) -> dict[str, str]:
    """What each compose service name and port becomes in the native stack."""
    host = settings.host
    return {
        "api:8000": f"{host}:{settings.api_port}",
        "alertmanager:9093": f"{host}:{settings.alertmanager_port}",
        "localhost:9090": f"{host}:{settings.prometheus_port}",
        "alert-log:9095": f"{host}:{settings.alert_log_port}",
        "retrainer:9097": f"{host}:{settings.retrainer_port}",
        "[rules.yml]": f"[{COMPOSE / 'prometheus' / 'rules.yml'}]",
    }


def native_config(settings: Settings, source: Path) -> Path:
    """A copy of a compose config with this stack's addresses: the only difference."""
    text = source.read_text()
    for compose, native in compose_addresses(settings).items():
        text = text.replace(compose, native)
    target = settings.state_dir / source.parent.name / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return target


def alertmanager_prepare(settings: Settings) -> dict[str, str]:
    """Its native config, and no memory of what it notified before the stack stopped.

    Prometheus forgets its alerts when it stops; an Alertmanager that remembered notifying one
    would stay silent when the same alert fires again after a restart (for `repeat_interval`,
    4 h). Its silences live in another file and are kept.
    """
    native_config(settings, COMPOSE / "alertmanager" / "alertmanager.yml")
    (settings.state_dir / "alertmanager" / "data" / "nflog").unlink(missing_ok=True)
    return {}


def writes_native_config(settings: Settings, source: Path) -> Callable[[], dict[str, str]]:
    """A `prepare` step that writes the native copy of a compose config (no extra env)."""

    def prepare() -> dict[str, str]:
        native_config(settings, source)
        return {}

    return prepare


def uvicorn(factory: str, host: str, port: int) -> list[str]:
    """One uvicorn worker serving an app factory; request lines are logged by the app."""
    return [
        sys.executable, "-m", "uvicorn", factory, "--factory",
        "--host", host, "--port", str(port), "--workers", "1", "--no-access-log",
    ]  # fmt: skip


def services(settings: Settings) -> list[Service]:
    """The services of the native stack, in start order."""
    state = settings.state_dir / "mlflow"
    mlflow_url = settings.url(settings.mlflow_port)
    api_url = settings.api_url
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
            command=uvicorn("app.serving.app:create_app", settings.host, settings.api_port),
            port=settings.api_port,
            health_url=f"{api_url}/health",
            url=f"{api_url}/docs",
            prepare=lambda: settings_env(settings),
        ),
        Service(
            name="retrainer",
            command=uvicorn(
                "app.retraining.watch:create_app", settings.host, settings.retrainer_port
            ),
            port=settings.retrainer_port,
            health_url=f"{settings.retrainer_url}/health",
            url=f"{settings.retrainer_url}/status",
            prepare=lambda: settings_env(settings),
        ),
        *monitoring_services(settings),
    ]


def service(settings: Settings, name: str) -> Service:
    """One service of the stack, by name."""
    return next(s for s in services(settings) if s.name == name)


def monitoring_services(settings: Settings) -> list[Service]:
    """The alert log, Alertmanager, Prometheus and (when installed) Grafana."""
    host, state = settings.host, settings.state_dir
    alertmanager = find_program("prometheus-alertmanager", "alertmanager")
    prometheus = find_program("prometheus")
    grafana = find_program("grafana", "grafana-server")
    grafana_url = settings.grafana_url
    return [
        Service(
            name="alert-log",
            command=uvicorn("app.monitoring.alert_log:create_app", host, settings.alert_log_port),
            port=settings.alert_log_port,
            health_url=f"{settings.alert_log_url}/health",
            url=f"{settings.alert_log_url}/alerts",
        ),
        Service(
            name="alertmanager",
            command=alertmanager
            and [
                alertmanager,
                f"--config.file={state / 'alertmanager' / 'alertmanager.yml'}",
                f"--storage.path={state / 'alertmanager' / 'data'}",
                f"--web.listen-address={host}:{settings.alertmanager_port}",
                "--cluster.listen-address=",  # one instance: no gossip port (9094)
            ],
            port=settings.alertmanager_port,
            health_url=f"{settings.alertmanager_url}/-/ready",
            url=settings.alertmanager_url,
            prepare=lambda: alertmanager_prepare(settings),
            install_hint="apt-get install prometheus-alertmanager "
            "(macOS: brew install alertmanager)",
        ),
        Service(
            name="prometheus",
            command=prometheus
            and [
                prometheus,
                f"--config.file={state / 'prometheus' / 'prometheus.yml'}",
                f"--storage.tsdb.path={state / 'prometheus' / 'data'}",
                f"--web.listen-address={host}:{settings.prometheus_port}",
            ],
            port=settings.prometheus_port,
            health_url=f"{settings.prometheus_url}/-/ready",
            url=settings.prometheus_url,
            prepare=writes_native_config(settings, COMPOSE / "prometheus" / "prometheus.yml"),
            install_hint="apt-get install prometheus (macOS: brew install prometheus)",
        ),
        Service(
            name="grafana",
            command=grafana
            and [
                grafana,
                *(["server"] if Path(grafana).name == "grafana" else []),
                f"--homepath={grafana_home(grafana)}",
            ],  # fmt: skip
            port=settings.grafana_port,
            health_url=f"{grafana_url}/api/health",
            url=f"{grafana_url}/d/model-service",
            prepare=lambda: grafana_env(settings),
            install_hint="Grafana has no Debian package here: it runs in the compose stack "
            "(compose/); or install it from grafana.com and `make stack-up` starts it too",
            optional=True,
        ),
    ]


def grafana_home(program: str) -> Path:
    """Where Grafana's static files are: beside the program (Homebrew, tarball) or Debian's."""
    for home in (Path(program).resolve().parents[1] / "share" / "grafana",
                 Path(program).resolve().parents[1], Path("/usr/share/grafana")):  # fmt: skip
        if (home / "conf" / "defaults.ini").exists():
            return home
    return Path("/usr/share/grafana")


def grafana_env(settings: Settings) -> dict[str, str]:
    """Grafana's settings for the native stack: compose/grafana's provisioning, our ports."""
    data = settings.state_dir / "grafana"
    return {
        "GF_SERVER_HTTP_ADDR": settings.host,
        "GF_SERVER_HTTP_PORT": str(settings.grafana_port),
        "GF_PATHS_DATA": str(data),
        "GF_PATHS_LOGS": str(data / "logs"),
        "GF_PATHS_PLUGINS": str(data / "plugins"),
        "GF_PATHS_PROVISIONING": str(COMPOSE / "grafana" / "provisioning"),
        "GF_SECURITY_ADMIN_PASSWORD": grafana_password(settings),
        "GF_ANALYTICS_REPORTING_ENABLED": "false",
        "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
        # Read by the provisioning files (compose sets them to service names).
        "PROMETHEUS_URL": settings.prometheus_url,
        "GRAFANA_DASHBOARDS_DIR": str(COMPOSE / "grafana" / "dashboards"),
    }


def port_variable(service: Service) -> str:
    """The setting that moves a service to another port (`WORKBOOK_MLFLOW_PORT`, ...)."""
    return f"WORKBOOK_{service.name.upper().replace('-', '_')}_PORT"


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

    needed = [service(settings, name) for name in ("mlflow", "alertmanager")]
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
                log.info("%-12s %-18s %s", *row)
        else:
            with stack_running(settings):
                return subprocess.run(args.command).returncode
    except StackError as error:
        log.error("error: %s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
