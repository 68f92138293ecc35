"""Pid files name the very process we started, never one that got its pid later."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from app.processes import live_pid, stop_group, write_pid


def test_a_pid_file_names_its_process_and_not_a_later_holder_of_the_pid(tmp_path):
    sleeper = subprocess.Popen(["sleep", "60"], start_new_session=True)
    pid_file = tmp_path / "sleeper.pid"
    try:
        write_pid(pid_file, sleeper.pid)
        assert live_pid(pid_file) == sleeper.pid

        # The same pid noted with another start time: what a pid file left from before a
        # reboot looks like once another program holds that pid. It is not ours to stop.
        pid_file.write_text(f"{sleeper.pid} Mon Jan  1 00:00:00 2001")
        assert live_pid(pid_file) is None
        assert stop_group(pid_file) is False
        assert sleeper.poll() is None, "stop_group signalled a process that was not ours"

        write_pid(pid_file, sleeper.pid)
        assert stop_group(pid_file) is True
        with pytest.raises(ProcessLookupError):  # stopped, and reaped by stop_group
            os.kill(sleeper.pid, 0)
    finally:
        if sleeper.poll() is None:
            os.killpg(sleeper.pid, signal.SIGKILL)
