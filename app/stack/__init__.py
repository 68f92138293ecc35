"""The native stack, as processes: MLflow, the model API, the retraining watcher, Prometheus,
Alertmanager and the alert log; Grafana too when it is installed.

`services` is the table of what runs (`app/stack/services.py`); `control.py` starts and stops
them, each in its own process group with a pid file and a log under settings.state_dir, `up`
returning once every service answers its health endpoint (starting twice is harmless; `reset`
stops the stack and deletes its state). `python -m app.stack up|down|status|reset|exec -- CMD`
is the command line (`__main__.py`).
"""

from app.credentials import admin_token, grafana_password, kept_secret
from app.stack.control import (
    StackError,
    down,
    free_port,
    give_back_sandboxes,
    is_healthy,
    log_file,
    port_in_use,
    reset,
    running,
    running_pid,
    stack_running,
    start,
    status,
    stop,
    up,
)
from app.stack.services import (
    COMPOSE,
    Service,
    compose_addresses,
    find_program,
    grafana_env,
    native_config,
    port_variable,
    service,
    services,
    settings_env,
)

__all__ = [
    "COMPOSE",
    "Service",
    "StackError",
    "admin_token",
    "compose_addresses",
    "down",
    "find_program",
    "free_port",
    "give_back_sandboxes",
    "grafana_env",
    "grafana_password",
    "is_healthy",
    "kept_secret",
    "log_file",
    "native_config",
    "port_in_use",
    "port_variable",
    "reset",
    "running",
    "running_pid",
    "service",
    "services",
    "settings_env",
    "stack_running",
    "start",
    "status",
    "stop",
    "up",
]
