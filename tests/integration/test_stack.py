"""The native stack's lifecycle: up (twice), status, down, with real processes."""

from __future__ import annotations

import httpx
import pytest

from app import stack
from app.config import Settings
from tests.conftest import free_port

pytestmark = pytest.mark.integration


def test_up_twice_status_and_reset(tmp_path):
    settings = Settings(
        state_dir=tmp_path / "state", mlflow_port=free_port(), api_port=free_port(), _env_file=None
    )
    try:
        assert [s.name for s in stack.up(settings)] == ["mlflow", "api"]
        assert stack.up(settings) == []  # already healthy: nothing started twice
        assert stack.status(settings) == [
            ("mlflow", "healthy", f"http://127.0.0.1:{settings.mlflow_port}"),
            ("api", "healthy", f"http://127.0.0.1:{settings.api_port}/docs"),
        ]
        assert (settings.state_dir / "mlflow.pid").exists()
        assert (settings.state_dir / "mlflow" / "mlflow.db").exists()
        # No champion in a new registry: the API is alive but says it is not ready, and why.
        ready = httpx.get(f"http://127.0.0.1:{settings.api_port}/ready")
        assert ready.status_code == 503 and "no model has the alias @champion" in ready.text
    finally:
        stack.reset(settings)
    assert not settings.state_dir.exists()  # registry, runs and logs are gone: a fresh start
    assert [state for _, state, _ in stack.status(settings)] == ["stopped", "stopped"]
    assert not stack.port_in_use(settings.host, settings.mlflow_port)
    assert not stack.port_in_use(settings.host, settings.api_port)


def test_a_port_taken_by_another_program_is_reported(tmp_path):
    import socket

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        settings = Settings(state_dir=tmp_path, mlflow_port=port, _env_file=None)
        with pytest.raises(stack.StackError, match=f"port {port} is taken") as error:
            stack.up(settings)
        assert "put WORKBOOK_MLFLOW_PORT=<free port> in .env" in str(error.value)
