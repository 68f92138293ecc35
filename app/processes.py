"""Background processes we start and stop: each leads a process group, its pid in a file."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


def live_pid(pid_file: Path) -> int | None:
    """The pid a pid file names, if that process is alive (None for no file, or a dead one)."""
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
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
