"""Background processes we start and stop: each leads a process group, its pid in a file."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path


def started_at(pid: int) -> str | None:
    """When process `pid` started, as `ps` tells it (None: no such process, or no `ps`)."""
    try:
        done = subprocess.run(["ps", "-o", "lstart=", "-p", str(pid)], capture_output=True)
    except FileNotFoundError:
        return None
    return done.stdout.decode().strip() or None


def write_pid(pid_file: Path, pid: int) -> None:
    """Note a process we started: its pid, and when it started (to tell it from a later
    process that got the same pid)."""
    pid_file.write_text(f"{pid} {started_at(pid) or ''}".strip())


def live_pid(pid_file: Path) -> int | None:
    """The pid a pid file names, if that very process is alive: None for no file, a dead
    process, or a pid now held by another process (after a reboot, say), which must never get
    our signals."""
    try:
        pid_text, _, started = pid_file.read_text().strip().partition(" ")
        pid = int(pid_text)
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    if started and started_at(pid) not in (started, None):
        return None
    return pid


def stop_group(pid_file: Path, grace_seconds: float = 15) -> bool:
    """Stop the process group a pid file names (SIGTERM, then SIGKILL after the grace period),
    and remove the file; return True if something was running."""
    pid = live_pid(pid_file)
    pid_file.unlink(missing_ok=True)
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
