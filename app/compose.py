"""Docker Compose from Python: the commands a learner types, for notebook 07 and the tests.

Runs `docker compose` (v2) where it exists, else `docker-compose` (v1.29, Debian's), from the
repository root, so docker-compose.yml and docker-compose.override.yml are read as they are
when you type the command yourself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from app.config import REPO_ROOT
from app.poll import wait_for


class ComposeError(RuntimeError):
    """A compose command failed, or a service did not become healthy; the message says why."""


def compose_program() -> list[str] | None:
    """`docker compose` or `docker-compose`, whichever is installed (None: neither)."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


def engine_answers(env: dict[str, str] | None = None) -> bool:
    """Whether a Docker engine answers (DOCKER_HOST, else the default socket)."""
    if not shutil.which("docker"):
        return False
    try:
        probe = subprocess.run(["docker", "info"], capture_output=True, env=env, timeout=15)
    except subprocess.TimeoutExpired:  # an engine address that does not answer
        return False
    return probe.returncode == 0


@dataclass(frozen=True)
class Compose:
    """One compose project: its files (none: the defaults) and extra environment."""

    project: str | None = None  # None: compose's default, the folder's name
    files: tuple[Path, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    root: Path = REPO_ROOT

    def command(self, *args: str) -> list[str]:
        """The whole command line: the compose program, the project, the files, `args`."""
        program = compose_program()
        if program is None:
            raise ComposeError("neither `docker compose` nor `docker-compose` is installed")
        files = [arg for path in self.files for arg in ("-f", str(path))]
        project = ["-p", self.project] if self.project else []
        return [*program, *project, *files, *args]

    def run(self, *args: str, check: bool = True, timeout: float | None = None) -> str:
        """Run `compose ARGS`; return its output (stdout and stderr, in order)."""
        done = subprocess.run(
            self.command(*args),
            cwd=self.root,
            env=os.environ | self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise ComposeError(f"`{' '.join(args)}` exited with {done.returncode}:\n{done.stdout}")
        return done.stdout

    def containers(self, service: str | None = None) -> list[dict]:
        """`docker inspect` of the project's containers (of one service), running or not."""
        ids = self.run("ps", "-q", *([service] if service else [])).split()
        if not ids:
            return []
        inspect = subprocess.run(
            ["docker", "inspect", *ids],
            env=os.environ | self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(inspect.stdout)

    def health(self) -> dict[str, list[str]]:
        """Each service's containers' states: 'healthy', 'starting', 'unhealthy', 'exited', ..."""
        states: dict[str, list[str]] = {}
        for container in self.containers():
            service = container["Config"]["Labels"]["com.docker.compose.service"]
            state = container["State"]
            status = state.get("Health", {}).get("Status") if state["Running"] else None
            states.setdefault(service, []).append(status or state["Status"])
        return states

    def wait_healthy(self, services: list[str], timeout: float = 180) -> float:
        """Wait until every container of these services is healthy; return the seconds taken."""
        start = time.monotonic()

        def unhealthy() -> dict[str, list[str]]:
            states = self.health()
            waiting = {s: states.get(s, ["missing"]) for s in services}
            return {s: st for s, st in waiting.items() if set(st) != {"healthy"}}

        try:
            wait_for(lambda: not unhealthy(), timeout, every=1, what="healthy containers")
        except TimeoutError:
            waiting = unhealthy()
            logs = self.run("logs", "--tail=30", *waiting, check=False)
            raise ComposeError(f"not healthy after {timeout:.0f} s: {waiting}\n{logs}") from None
        return time.monotonic() - start
