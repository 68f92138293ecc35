"""The native stack's lifecycle: up (twice), status, down, with real processes."""

from __future__ import annotations

import httpx
import pytest

from app import stack
from app.config import REPO_ROOT, Settings
from app.stack import free_port

pytestmark = pytest.mark.integration


SERVICES = ["mlflow", "api", "retrainer", "alert-log", "alertmanager", "prometheus"]
PORTS = ["mlflow", "api", "retrainer", "alert_log", "alertmanager", "prometheus", "grafana"]


def test_up_twice_status_and_reset(tmp_path):
    settings = Settings(
        state_dir=tmp_path / "state",
        **{f"{name}_port": free_port() for name in PORTS},
        _env_file=None,
    )
    try:
        assert [s.name for s in stack.up(settings)][:6] == SERVICES  # and Grafana, if installed
        assert stack.up(settings) == []  # already healthy: nothing started twice
        status = stack.status(settings)
        assert status[:6] == [
            ("mlflow", "healthy", f"http://127.0.0.1:{settings.mlflow_port}"),
            ("api", "healthy", f"http://127.0.0.1:{settings.api_port}/docs"),
            ("retrainer", "healthy", f"http://127.0.0.1:{settings.retrainer_port}/status"),
            ("alert-log", "healthy", f"http://127.0.0.1:{settings.alert_log_port}/alerts"),
            ("alertmanager", "healthy", f"http://127.0.0.1:{settings.alertmanager_port}"),
            ("prometheus", "healthy", f"http://127.0.0.1:{settings.prometheus_port}"),
        ]
        # Without Grafana (no package here), status says so and how to get it.
        if stack.find_program("grafana", "grafana-server") is None:
            assert status[6][:2] == ("grafana", "not installed") and "compose" in status[6][2]
        else:
            assert status[6][:2] == ("grafana", "healthy")
        assert (settings.state_dir / "mlflow.pid").exists()
        assert (settings.state_dir / "mlflow" / "mlflow.db").exists()
        # No champion in a new registry: the API is alive but says it is not ready, and why.
        ready = httpx.get(f"http://127.0.0.1:{settings.api_port}/ready")
        assert ready.status_code == 503 and "no model has the alias @champion" in ready.text
    finally:
        stack.reset(settings)
    assert not settings.state_dir.exists()  # registry, runs and logs are gone: a fresh start
    assert [state for _, state, _ in stack.status(settings)][:6] == ["stopped"] * 6
    for name in PORTS:
        assert not stack.port_in_use(settings.host, getattr(settings, f"{name}_port"))


def test_a_port_taken_by_another_program_is_reported(tmp_path):
    import socket

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        settings = Settings(state_dir=tmp_path, mlflow_port=port, _env_file=None)
        with pytest.raises(stack.StackError, match=f"port {port} is taken") as error:
            stack.up(settings)
        assert "put WORKBOOK_MLFLOW_PORT=<free port> in .env" in str(error.value)


def test_a_missing_program_is_named_with_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on the PATH: no prometheus
    settings = Settings(state_dir=tmp_path, prometheus_port=free_port(), _env_file=None)
    with pytest.raises(stack.StackError, match="prometheus is not installed: apt-get install"):
        stack.start(settings, stack.service(settings, "prometheus"))


def test_grafana_runs_natively_with_compose_s_provisioning_when_installed(tmp_path, monkeypatch):
    """A `grafana` program on the PATH (here a stand-in: Grafana has no package here) makes the
    stack start it with compose/grafana's provisioning, our Prometheus and a kept password."""
    program = tmp_path / "bin" / "grafana"
    program.parent.mkdir()
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    monkeypatch.setenv("PATH", str(program.parent))
    settings = Settings(state_dir=tmp_path / "state", _env_file=None)
    grafana = stack.service(settings, "grafana")
    assert grafana.command[:2] == [str(program), "server"]
    env = grafana.prepare()
    assert env["GF_PATHS_PROVISIONING"] == str(REPO_ROOT / "compose" / "grafana" / "provisioning")
    assert env["GRAFANA_DASHBOARDS_DIR"] == str(REPO_ROOT / "compose" / "grafana" / "dashboards")
    assert env["PROMETHEUS_URL"] == settings.prometheus_url
    assert env["GF_SERVER_HTTP_PORT"] == str(settings.grafana_port)
    password = env["GF_SECURITY_ADMIN_PASSWORD"]
    assert len(password) >= 24 and grafana.prepare()["GF_SECURITY_ADMIN_PASSWORD"] == password
    assert (settings.state_dir / "grafana-admin-password").stat().st_mode & 0o077 == 0
