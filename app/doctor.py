"""`python -m app.doctor`: what this machine needs for the course, checked, with the fix for each.

`make doctor` runs it. Each check is ok, a warning (something optional, or a choice to make) or
a problem that blocks the course; the exit code is 1 when there is any problem.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from app import stack
from app.compose import compose_program, engine_answers
from app.config import REPO_ROOT, Settings, get_settings
from app.log import setup_logging

log = logging.getLogger("app.doctor")
MIN_FREE_GB = 5  # .venv (~2 GB), data, MLflow's artifacts and the executed notebooks, with room


@dataclass(frozen=True)
class Finding:
    """One check of this machine: its name, ok/warning/problem, and the fix."""

    check: str
    level: str  # "ok", "warning" or "problem"
    detail: str  # what was found, and the fix when it is not ok


def python_version(python: str = "python3") -> Finding:
    """The interpreter `make setup` builds .venv with (scripts/check-python.sh says the fix)."""
    check = subprocess.run(
        [str(REPO_ROOT / "scripts" / "check-python.sh"), python], capture_output=True, text=True
    )
    if check.returncode == 0:
        return Finding("python", "ok", f"{python}: {check.stdout.strip() or 'Python 3.11+'}")
    return Finding("python", "problem", (check.stderr or check.stdout).strip())


def disk(settings: Settings) -> Finding:
    """Free disk space where the project lives."""
    free = shutil.disk_usage(settings.root).free / 1e9
    if free >= MIN_FREE_GB:
        return Finding("disk", "ok", f"{free:.0f} GB free")
    return Finding("disk", "problem", f"{free:.1f} GB free, {MIN_FREE_GB} GB needed: make room")


def ports(settings: Settings) -> Iterator[Finding]:
    """Each service's port: ours (healthy), free, or taken by another program."""
    for service in stack.services(settings):
        if service.command is None:
            continue
        if stack.is_healthy(service):
            yield Finding(f"port {service.port}", "ok", f"{service.name} answers there")
        elif stack.port_in_use(settings.host, service.port):
            yield Finding(
                f"port {service.port}",
                "problem",
                f"taken by another program: stop it, or put {stack.port_variable(service)}="
                "<free port> in .env",
            )
        else:
            yield Finding(f"port {service.port}", "ok", f"free for {service.name}")


def programs(settings: Settings) -> Iterator[Finding]:
    """The stack's missing programs (Prometheus, Alertmanager, Grafana), and how to get each."""
    for service in stack.services(settings):
        if service.command is None:
            level = "warning" if service.optional else "problem"
            yield Finding(service.name, level, f"not installed: {service.install_hint}")


def dvc_remote(settings: Settings) -> Finding:
    """Whether the DVC remote folder exists (`make data` creates and fills it)."""
    remote = Path(settings.dvc_remote_url).expanduser()
    if not remote.exists():
        return Finding(
            "dvc remote",
            "warning",
            f"{remote} does not exist yet: `make data` creates and fills it",
        )
    return Finding("dvc remote", "ok", str(remote))


def docker() -> Finding:
    """Whether Docker and compose are installed and an engine answers."""
    if compose_program() is None:
        return Finding(
            "docker", "warning", "no Docker: stage 4 (containers) needs it, the rest not"
        )
    if not engine_answers():
        return Finding("docker", "warning", "installed, but no engine answers: start Docker")
    program = compose_program() or ["no compose: install docker-compose"]
    return Finding("docker", "ok", "an engine answers; " + " ".join(program))


def kubectl() -> Finding:
    """Whether kubectl (with its built-in Kustomize) is there to render deploy/k8s."""
    if shutil.which("kubectl") is None:
        return Finding(
            "kubectl",
            "warning",
            "not installed: notebook 07's Kubernetes section and `make k8s-check` need it "
            "(1.32 or newer: kubernetes.io/docs/tasks/tools); no cluster is needed",
        )
    return Finding("kubectl", "ok", "renders deploy/k8s (kubectl kustomize)")


def findings(settings: Settings) -> list[Finding]:
    """Every check, in the order a learner would fix them."""
    return [
        python_version(),
        disk(settings),
        *programs(settings),
        *ports(settings),
        dvc_remote(settings),
        docker(),
        kubectl(),
    ]


def main() -> int:
    """`make doctor`: print each finding; exit 1 on a problem."""
    setup_logging()
    found = findings(get_settings())
    for finding in found:
        log.info("%-8s %-14s %s", finding.level, finding.check, finding.detail)
    problems = [f for f in found if f.level == "problem"]
    log.info(
        "%d problem(s), %d warning(s)", len(problems), sum(f.level == "warning" for f in found)
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
