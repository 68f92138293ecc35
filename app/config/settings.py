"""Settings: where things live and how to reach them, from the environment and .env."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    """Where things live and how to reach them; override any field with WORKBOOK_<FIELD>."""

    model_config = SettingsConfigDict(
        env_prefix="WORKBOOK_", env_file=REPO_ROOT / ".env", extra="ignore"
    )

    root: Path = REPO_ROOT
    params_path: Path = REPO_ROOT / "params.yaml"
    # The DVC remote: a folder outside the git tree, shared by every clone on this machine.
    dvc_remote_name: str = "local"
    dvc_remote_url: str = "~/.cache/mlops-workbook/dvc-remote"
    kernel_name: str = "python3"

    host: str = "127.0.0.1"
    mlflow_port: int = 5000
    api_port: int = 8000
    prometheus_port: int = 9090
    alertmanager_port: int = 9093
    alert_log_port: int = 9095  # the webhook Alertmanager notifies (app/monitoring/alert_log.py)
    grafana_port: int = 3000
    retrainer_port: int = 9097  # the retraining watcher: webhook, status, metrics
    jupyter_port: int = 8888
    # Where the native stack keeps pid files, logs and the MLflow database (git-ignored).
    state_dir: Path = REPO_ROOT / ".stack"
    # Set to reach an MLflow server elsewhere (or a server-less sqlite:///path/mlflow.db); by
    # default, the native stack's own.
    mlflow_tracking_uri: str | None = None
    # Set to ask a Prometheus elsewhere (compose's and the cluster's: http://prometheus:9090),
    # as `python -m app.retraining promote` does; by default, the native stack's own.
    prometheus_server_url: str | None = None
    experiment_name: str = "digits"
    model_name: str = "digits-classifier"

    # The model API.
    api_poll_seconds: float = Field(default=5.0, gt=0)  # how often it checks @champion
    api_max_instances: int = Field(default=1000, gt=0)  # rows per /predict request
    # Room for api_max_instances rows of full-precision floats (~1.3 KB a row in JSON).
    api_max_body_bytes: int = Field(default=2_000_000, gt=0)
    api_max_image_bytes: int = Field(default=5_000_000, gt=0)
    api_max_image_pixels: int = Field(default=25_000_000, gt=0)
    api_threads: int = Field(
        default=1, gt=0
    )  # torch or ONNX Runtime threads per request: 1 is fastest for one digit
    # What computes the answers: auto is ONNX Runtime for a model logged with an ONNX export
    # (every model now is), else the model's own library, as native always is (PyTorch,
    # scikit-learn).
    api_model_runtime: Literal["auto", "onnxruntime", "native"] = "auto"
    # What the API's memory comes from (app/allocator.py): auto is mimalloc on 2 MiB pages
    # where Linux has the library (Debian: libmimalloc2.0), else Python's own, as python always is.
    api_allocator: Literal["auto", "mimalloc", "python"] = "auto"
    # false: the API keeps no window of inputs for drift (its drift gauges stay NaN, InputDrift
    # cannot fire); what `make bench` measures monitoring's cost with.
    api_drift_window: bool = True
    # The retraining watcher checks git HEAD's data.dvc this often (an alert checks at once).
    retrain_poll_seconds: float = Field(default=10.0, gt=0)
    # The API's predictions and labels (app/feedback.py): unset, a SQLite file in state_dir;
    # feedback_store false keeps no input at all (and POST /feedback answers 503).
    feedback_store: bool = True
    feedback_database_url: str | None = None
    feedback_keep_hours: float = Field(default=168.0, gt=0)  # unlabelled predictions: a week
    feedback_max_unlabelled: int = Field(default=100_000, gt=0)  # ... and at most this many
    # Progressive delivery (app/serving/rollout.py): a challenger's canary share when its version
    # has no `rollout.share` tag, the shadow queue's length, and the rollback rule: over the last
    # `rollout_window` requests of each role, once the canary has `rollout_min_requests`, it stops
    # when its error share is more than `max_error_gap` above the champion's or its median model
    # latency more than `max_latency_ratio` times the champion's; or, with `min_labels` labels
    # each, when its accuracy is more than `max_accuracy_gap` below the champion's.
    rollout_share: float = Field(default=0.1, ge=0, le=1)
    rollout_shadow_queue: int = Field(default=2048, gt=0)  # requests waiting for the shadow
    rollout_window: int = Field(default=200, gt=0)
    rollout_min_requests: int = Field(default=50, gt=0)
    rollout_max_error_gap: float = Field(default=0.05, ge=0, le=1)
    rollout_max_latency_ratio: float = Field(default=3.0, gt=1)
    rollout_min_labels: int = Field(default=30, gt=0)
    rollout_max_accuracy_gap: float = Field(default=0.1, ge=0, le=1)
    # Guards POST /admin/reload. The native stack makes one in state_dir if none is set.
    admin_token: SecretStr | None = None
    # Grafana's `admin` password; as for the token, the native stack makes one if none is set.
    grafana_admin_password: SecretStr | None = None

    def url(self, port: int) -> str:
        """The address of a server of this stack listening on `port`: every URL is made here."""
        return f"http://{self.host}:{port}"

    @property
    def mlflow_uri(self) -> str:
        """Where MLflow answers: the tracking URI if one is set, else the stack's server."""
        return self.mlflow_tracking_uri or self.url(self.mlflow_port)

    @property
    def api_url(self) -> str:
        """The model API."""
        return self.url(self.api_port)

    @property
    def prometheus_url(self) -> str:
        """Where Prometheus answers: `prometheus_server_url` if set, else the stack's own."""
        return self.prometheus_server_url or self.stack_prometheus_url

    @property
    def stack_prometheus_url(self) -> str:
        """The native stack's own Prometheus, whatever `prometheus_server_url` names."""
        return self.url(self.prometheus_port)

    @property
    def alertmanager_url(self) -> str:
        """Alertmanager."""
        return self.url(self.alertmanager_port)

    @property
    def alert_log_url(self) -> str:
        """The alert log (Alertmanager's webhook)."""
        return self.url(self.alert_log_port)

    @property
    def grafana_url(self) -> str:
        """Grafana."""
        return self.url(self.grafana_port)

    @property
    def retrainer_url(self) -> str:
        """The retraining watcher."""
        return self.url(self.retrainer_port)

    @property
    def data_dir(self) -> Path:
        """The data folder `data.dvc` tracks."""
        return self.root / "data"

    @property
    def dvc_file(self) -> Path:
        """The pointer file that pins the data version."""
        return self.root / "data.dvc"

    @property
    def notebooks_dir(self) -> Path:
        """The stage notebooks."""
        return self.root / "notebooks"

    @property
    def runs_dir(self) -> Path:
        """Executed copies of the notebooks (git-ignored)."""
        return self.root / "runs"

    @property
    def sandboxes_dir(self) -> Path:
        """What notebooks borrow from the stack, noted to be given back (app/sandbox.py)."""
        return self.state_dir / "sandboxes"
