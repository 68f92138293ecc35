"""The API's allocator: mimalloc on huge pages where Linux has it, Python's own when asked, and a
clear refusal when mimalloc is asked for by name and missing. Checked in real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from app import allocator, stack
from app.config import Settings
from tests.helpers import huge_pages_possible

ASK_FOR_MEMORY = "from app.allocator import in_use; x = [str(i) for i in range(10**6)]"


def in_use_of_a_process(env: dict[str, str]) -> dict:
    """`in_use()` as a new Python process started with `env` reports it, a million strings in
    memory."""
    code = f"{ASK_FOR_MEMORY}; import json; print(json.dumps(in_use()))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=os.environ | env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stderr == "", done.stderr  # the allocator writes nothing of its own
    return json.loads(done.stdout)


def test_auto_puts_the_api_on_mimalloc_here(monkeypatch):
    assert sys.platform == "linux" and allocator.mimalloc() == "libmimalloc.so.2", (
        "libmimalloc is needed: `make system-deps` installs Debian's libmimalloc2.0"
    )
    monkeypatch.setenv("LD_PRELOAD", "libother.so")
    env = allocator.allocator_env(Settings(_env_file=None))
    assert env == {
        "LD_PRELOAD": "libother.so libmimalloc.so.2",  # what was preloaded already stays
        "PYTHONMALLOC": "malloc",
        "MIMALLOC_LARGE_OS_PAGES": "1",
    }
    assert stack.service(Settings(_env_file=None), "api").env == allocator.allocator_env(
        Settings(_env_file=None)
    )


def test_a_process_started_with_that_environment_runs_on_mimalloc_s_huge_pages():
    env = allocator.allocator_env(Settings(_env_file=None))
    assert env
    tuned = in_use_of_a_process(env)
    assert tuned["allocator"] == "mimalloc"
    if huge_pages_possible():
        assert tuned["huge_pages_mib"] >= 50  # most of the strings' memory
    else:
        assert tuned["huge_pages_mib"] == 0
    plain = in_use_of_a_process({"LD_PRELOAD": "", "PYTHONMALLOC": ""})
    assert plain["allocator"] == "python"
    if huge_pages_possible():
        assert plain["huge_pages_mib"] < tuned["huge_pages_mib"] / 2


def test_python_s_own_allocator_when_asked():
    settings = Settings(api_allocator="python", _env_file=None)
    assert allocator.allocator_env(settings) == {}
    assert stack.service(settings, "api").env == {}


def test_mimalloc_asked_for_by_name_and_missing_stops_the_api_with_how_to_install_it(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(allocator, "mimalloc", lambda: None)  # a machine without the library
    auto = Settings(state_dir=tmp_path, _env_file=None)
    assert stack.service(auto, "api").command is not None  # auto: Python's allocator instead
    assert stack.service(auto, "api").env == {}
    settings = Settings(
        state_dir=tmp_path, api_port=stack.free_port(), api_allocator="mimalloc", _env_file=None
    )
    with pytest.raises(stack.StackError, match="apt-get install libmimalloc2.0"):
        stack.start(settings, stack.service(settings, "api"))
    assert not list(tmp_path.glob("api.*")), "nothing started, no pid file or log left"
