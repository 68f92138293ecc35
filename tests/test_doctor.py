"""`make doctor`: each blocking problem found and named with its fix; exit 1 only then."""

from __future__ import annotations

import socket

from app import doctor, stack
from app.config import Settings
from tests.helpers import fake_python


def own_ports(tmp_path) -> Settings:
    """Settings whose services all sit on ports nothing listens on."""
    services = ("mlflow", "api", "prometheus", "alertmanager", "alert_log", "grafana", "retrainer")
    ports = {f"{name}_port": stack.free_port() for name in services}
    return Settings(state_dir=tmp_path / "state", _env_file=None, **ports)


def test_a_port_taken_by_another_program_is_a_problem_with_its_fix(tmp_path):
    settings = own_ports(tmp_path)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", settings.api_port))
        squatter.listen()
        found = {f.check: f for f in doctor.findings(settings)}
    taken = found[f"port {settings.api_port}"]
    assert taken.level == "problem" and "WORKBOOK_API_PORT=<free port>" in taken.detail
    assert found[f"port {settings.mlflow_port}"].level == "ok"


def test_free_ports_and_this_machine_block_nothing(tmp_path):
    problems = [f for f in doctor.findings(own_ports(tmp_path)) if f.level == "problem"]
    assert problems == []


def test_an_old_python_is_a_problem_with_its_fix(tmp_path):
    finding = doctor.python_version(str(fake_python(tmp_path, (3, 10, 12))))
    assert finding.level == "problem" and "make PYTHON=python3.11" in finding.detail


def test_kubectl_missing_is_a_warning_that_says_what_needs_it(monkeypatch):
    assert doctor.kubectl().level == "ok"  # these machines have it (the k8s tests need it)
    monkeypatch.setenv("PATH", "/nonexistent")
    finding = doctor.kubectl()
    assert finding.level == "warning" and "make k8s-check" in finding.detail
