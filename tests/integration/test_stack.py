"""The native stack's lifecycle: up (twice), status, down, with real processes."""

from __future__ import annotations

import pytest

from app import stack
from app.config import Settings
from tests.conftest import free_port

pytestmark = pytest.mark.integration


def test_up_twice_status_and_down(tmp_path):
    settings = Settings(state_dir=tmp_path, mlflow_port=free_port(), _env_file=None)
    try:
        assert [s.name for s in stack.up(settings)] == ["mlflow"]
        assert stack.up(settings) == []  # already healthy: nothing started twice
        assert stack.status(settings) == [
            ("mlflow", "healthy", f"http://127.0.0.1:{settings.mlflow_port}")
        ]
        assert (tmp_path / "mlflow.pid").exists() and (tmp_path / "mlflow.log").exists()
    finally:
        stack.down(settings)
    assert stack.status(settings)[0][1] == "stopped"
    assert not stack.port_in_use(settings.host, settings.mlflow_port)


def test_a_port_taken_by_another_program_is_reported(tmp_path):
    import socket

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        settings = Settings(state_dir=tmp_path, mlflow_port=port, _env_file=None)
        with pytest.raises(stack.StackError, match=f"port {port} is taken"):
            stack.up(settings)
