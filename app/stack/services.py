"""The native stack's services: what each runs, where it answers, and its configs.

Prometheus and Alertmanager read copies of compose/'s configs with this stack's addresses
(`native_config`); Grafana reads compose/'s provisioning through its environment.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from app.allocator import INSTALL_HINT, allocator_env
from app.config import REPO_ROOT, Settings
from app.credentials import admin_token, grafana_password

COMPOSE = REPO_ROOT / "compose"


@dataclass(frozen=True)
class Service:
    """One service of the native stack: its command, port, health URL and start-up needs."""

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
    allocator = allocator_env(settings)
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
            command=None
            if allocator is None
            else uvicorn("app.serving.app:create_app", settings.host, settings.api_port),
            port=settings.api_port,
            health_url=f"{api_url}/health",
            url=f"{api_url}/docs",
            env=allocator or {},
            prepare=lambda: settings_env(settings),
            install_hint=INSTALL_HINT,
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
            command=None
            if alertmanager is None
            else [
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
            command=None
            if prometheus is None
            else [
                prometheus,
                f"--config.file={state / 'prometheus' / 'prometheus.yml'}",
                f"--storage.tsdb.path={state / 'prometheus' / 'data'}",
                f"--web.listen-address={host}:{settings.prometheus_port}",
            ],
            port=settings.prometheus_port,
            health_url=f"{settings.stack_prometheus_url}/-/ready",
            url=settings.stack_prometheus_url,
            prepare=writes_native_config(settings, COMPOSE / "prometheus" / "prometheus.yml"),
            install_hint="apt-get install prometheus (macOS: brew install prometheus)",
        ),
        Service(
            name="grafana",
            command=None
            if grafana is None
            else [
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
        "PROMETHEUS_URL": settings.stack_prometheus_url,
        "GRAFANA_DASHBOARDS_DIR": str(COMPOSE / "grafana" / "dashboards"),
    }


def port_variable(service: Service) -> str:
    """The setting that moves a service to another port (`WORKBOOK_MLFLOW_PORT`, ...)."""
    return f"WORKBOOK_{service.name.upper().replace('-', '_')}_PORT"
