"""`make setup`'s first step: an interpreter that cannot build the venv is refused in one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from app.config import REPO_ROOT

CHECK = REPO_ROOT / "scripts" / "check-python.sh"


def fake_python(tmp_path, version: tuple[int, int, int], venv: bool = True):
    """An interpreter that reports another version (and, optionally, lacks venv)."""
    shim = "import sys; sys.version_info = {v!r}; sys.modules.update({m}); exec(sys.argv[1])"
    modules = "" if venv else "{'venv': None}"
    script = tmp_path / "python"
    script.write_text(
        "#!/usr/bin/env bash\n"
        f'[ "$1" = --version ] && echo "Python {".".join(map(str, version))}" && exit 0\n'
        f'exec {sys.executable} -c "{shim.format(v=version, m=modules)}" "$2"\n'
    )
    script.chmod(0o755)
    return script


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
