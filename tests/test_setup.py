"""`make setup`: an interpreter that cannot build the venv is refused in one line, and torch's
CPU build is installed first where PyTorch's index answers, without ever stalling set-up."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from app.config import REPO_ROOT
from tests.helpers import fake_python

CHECK = REPO_ROOT / "scripts" / "check-python.sh"


def check(python) -> subprocess.CompletedProcess:
    return subprocess.run([CHECK, str(python)], capture_output=True, text=True)


def test_this_interpreter_passes():
    assert check(sys.executable).returncode == 0


@pytest.mark.parametrize(
    ("version", "venv", "says"),
    [
        ((3, 10, 12), True, "Python 3.10.12 is too old: the workbook needs Python 3.11+"),
        ((3, 11, 4), False, "cannot create a virtual environment (no venv/ensurepip)"),
    ],
)
def test_a_bad_interpreter_is_refused_with_the_fix(tmp_path, version, venv, says):
    done = check(fake_python(tmp_path, version, venv))
    assert done.returncode == 1
    assert says in done.stderr and "python3.11-venv" in done.stderr  # the fix, named
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_missing_interpreter_is_named(tmp_path):
    done = check(tmp_path / "python3.99")
    assert done.returncode == 1 and "python3.99' not found" in done.stderr


# scripts/torch-cpu.sh: PyTorch's CPU build first, where its index answers, never a stall.
TORCH_CPU = REPO_ROOT / "scripts" / "torch-cpu.sh"


def torch_cpu(python: str, **env: str) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    done = subprocess.run(
        [TORCH_CPU, python], capture_output=True, text=True, env=os.environ | env, timeout=30
    )
    return done, time.monotonic() - start


@pytest.fixture
def python_without_torch(tmp_path) -> str:
    """An environment with pip and no torch, as `make setup` has before installing anything."""
    subprocess.run([sys.executable, "-m", "venv", tmp_path / "venv"], check=True)
    return str(tmp_path / "venv" / "bin" / "python")


@pytest.mark.parametrize(
    "index",
    ["http://127.0.0.1:9/whl/cpu", "http://10.255.255.1/whl/cpu"],
    ids=["refused", "silent"],
)
def test_an_unreachable_cpu_index_never_stalls_setup(python_without_torch, index):
    done, seconds = torch_cpu(python_without_torch, TORCH_CPU_INDEX=index)
    assert done.returncode == 0, done.stderr
    assert f"{index} does not answer" in done.stderr
    assert seconds < 6, f"took {seconds:.1f} s"
    installed = subprocess.run([python_without_torch, "-m", "pip", "list"], capture_output=True)
    assert b"torch" not in installed.stdout


def test_gpu_owners_opt_out_and_an_installed_torch_is_kept(python_without_torch):
    unreachable = "http://127.0.0.1:9/whl/cpu"
    done, seconds = torch_cpu(python_without_torch, TORCH_CPU="0", TORCH_CPU_INDEX=unreachable)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "") and seconds < 2
    done, _ = torch_cpu(sys.executable, TORCH_CPU_INDEX=unreachable)  # this venv has the pin
    assert (done.returncode, done.stderr) == (0, "")
