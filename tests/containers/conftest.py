"""The compose stack built and run by a real Docker engine, shared by the container tests.

`make compose-test` starts an engine (scripts/docker-engine.sh) and sets DOCKER_HOST. Where no
registry answers, the official images are replaced by local stand-ins built from Debian's
packages (compose/standins/build.sh); the builds get this machine's extra CA certificates and,
where PyTorch's CPU index does not answer, the CPU torch wheel pip finds here: the inputs a
learner behind a company proxy provides the same way (compose/ca-certificates, compose/wheels).
Grafana has no stand-in: where it cannot be pulled, the stack runs without it, and says so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from app.compose import Compose, engine_answers
from app.config import REPO_ROOT
from app.k8s import default_of
from tests.helpers import PORTS

COMPOSE = REPO_ROOT / "compose"
SERVICES = ["mlflow", "api", "retrainer", "alert-log", "prometheus", "alertmanager", "grafana"]
CA_CERTIFICATES = Path("/usr/local/share/ca-certificates")


def default_image(service: str, file: Path = REPO_ROOT / "docker-compose.yml") -> str:
    """The official image compose pulls for a service (`${VAR:-image}` -> image)."""
    return default_of(yaml.safe_load(file.read_text())["services"][service]["image"])


def pullable(image: str) -> bool:
    return subprocess.run(["docker", "pull", "--quiet", image], capture_output=True).returncode == 0


def standin_images() -> dict[str, str]:
    """Build the stand-ins (kept between runs); return their *_IMAGE variables."""
    done = subprocess.run(
        [COMPOSE / "standins" / "build.sh"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"stand-ins failed:\n{done.stderr[-3000:]}"
    return dict(line.split("=", 1) for line in done.stdout.split())


def torch_index_answers() -> bool:
    try:
        httpx.head("https://download.pytorch.org/whl/cpu/", timeout=5)
    except httpx.HTTPError:
        return False
    return True


def provide_build_inputs() -> None:
    """What a learner behind a proxy provides: its CA, and the CPU torch wheel if needed."""
    for certificate in CA_CERTIFICATES.glob("*.crt"):
        shutil.copy(certificate, COMPOSE / "ca-certificates" / certificate.name)
    if torch_index_answers() or list((COMPOSE / "wheels").glob("torch-*.whl")):
        return
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    pin = next(r for r in project["optional-dependencies"]["train"] if r.startswith("torch=="))
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", pin,
         "--dest", str(COMPOSE / "wheels")],
        check=True,
    )  # fmt: skip
    wheels = [w.name for w in (COMPOSE / "wheels").glob("torch-*.whl")]
    assert wheels and all("+cpu" in w for w in wheels), f"not a CPU build of torch: {wheels}"


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    """Build our images; return the environment the stacks need here (stand-ins, passwords)."""
    assert engine_answers(), "no Docker engine answers: `make compose-test` starts one"
    env = {"WORKBOOK_GRAFANA_ADMIN_PASSWORD": "compose-tests", "POSTGRES_PASSWORD": "compose-tests"}
    env["WORKBOOK_ADMIN_TOKEN"] = "compose-tests"  # the admin routes: GET /admin/labels
    if not pullable(default_image("prometheus")):
        env |= standin_images()
    provide_build_inputs()
    start = time.monotonic()
    Compose(env=env).run("build", timeout=1800)
    print(f"\nimages built in {time.monotonic() - start:.0f} s")
    return env


def grafana_available() -> bool:
    if pullable(default_image("grafana")):
        return True
    print("\nGrafana: skipped (no registry answers and Debian has no package to stand in)")
    return False


@pytest.fixture(scope="module")
def stack(images) -> Iterator[tuple[Compose, list[str]]]:
    """The single-machine stack (docker-compose.yml + override), trained once, then removed."""
    project = Compose(project="workbook-compose-test", env=images | PORTS)
    services = [s for s in SERVICES if s != "grafana" or grafana_available()]
    project.run("down", "--volumes", "--remove-orphans", check=False)
    start = time.monotonic()
    try:
        project.run("up", "-d", *services, timeout=600)
        healthy = project.wait_healthy(services)
        print(
            f"\nup -d: all healthy after {time.monotonic() - start:.0f} s ({healthy:.0f} s waiting)"
        )
        start = time.monotonic()
        print(project.run("run", "--rm", "trainer", timeout=900)[-600:])
        print(f"trainer: {time.monotonic() - start:.0f} s")
        yield project, services
    finally:
        if os.environ.get("WORKBOOK_KEEP_COMPOSE") != "1":
            project.run("down", "--volumes", "--remove-orphans", check=False)
