"""Settings (environment) and parameters (params.yaml): the only place either is read."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]
# Live accuracy's knobs for models whose drift reference predates them (see MonitoringParams).
LIVE_WINDOW, LIVE_MIN_LABELS, LIVE_THRESHOLD = 200, 20, 0.8


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
    )  # torch threads per request: 1 is fastest for one digit
    # The retraining watcher checks git HEAD's data.dvc this often (an alert checks at once).
    retrain_poll_seconds: float = Field(default=10.0, gt=0)
    # The API's predictions and labels (app/feedback.py): unset, a SQLite file in state_dir;
    # feedback_store false keeps no input at all (and POST /feedback answers 503).
    feedback_store: bool = True
    feedback_database_url: str | None = None
    feedback_keep_hours: float = Field(default=168.0, gt=0)  # unlabelled predictions: a week
    feedback_max_unlabelled: int = Field(default=100_000, gt=0)  # ... and at most this many
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
        """Prometheus."""
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


class SplitParams(BaseModel):
    """How the source digits are split into train and val."""

    seed: int
    val_fraction: float = Field(gt=0, lt=1)


class ShiftParams(BaseModel):
    """A batch of shifted digits: how many, and how they differ from the originals."""

    seed: int  # picks the digits and draws their angles and noise
    size: int = Field(gt=0)
    rotate_degrees: float
    thicken: int = Field(ge=0)
    noise_std: float = Field(ge=0)


class DriftBatchParams(ShiftParams):
    """The drifted batch (val digits) that monitoring sends, and a fresh draw like it."""

    # Another batch made the same way from another seed: nothing is trained or tuned on it,
    # so it measures how well a model generalises to drifted digits.
    fresh_seed: int


class VersionParams(BaseModel):
    """What one dataset version's train split holds (val is the same in every version)."""

    pool: float = Field(gt=0, le=1)  # the stratified share of the training pool; nested
    # Add `shifted_train`'s labelled shifted digits to train, and `shifted_val`'s as a second
    # evaluation set (`shifted_val/`): the traffic the version's models must serve.
    include_shifted: bool = False


class FieldParams(BaseModel):
    """Labels from the field as a data version (`python -m app.data field`)."""

    holdout: float = Field(gt=0, lt=1)  # the share kept apart as field_val/, by input hash


class DataParams(BaseModel):
    """The data versions and how each is built (params.yaml `data`)."""

    split: SplitParams
    versions: dict[str, VersionParams]
    shift: DriftBatchParams
    # The labelled shifted digits a version may add: made from training-pool digits only.
    shifted_train: ShiftParams
    # Its labelled shifted evaluation set: val digits, drawn apart from the drift batches.
    shifted_val: ShiftParams
    field: FieldParams  # labelled inputs from the API's feedback store


class ValidationParams(BaseModel):
    """What a valid dataset holds (params.yaml `validation`)."""

    min_per_class_train: int = Field(ge=1)
    min_per_class_val: int = Field(ge=1)
    min_field_val: int = Field(ge=1)  # field_val/ may lack digits nobody drew: a total minimum


class BaselineParams(BaseModel):
    """The logistic regression's hyperparameters."""

    C: float = Field(gt=0)  # inverse regularisation strength
    max_iter: int = Field(gt=0)


class AugmentParams(BaseModel):
    """Drift-like changes to CNN training digits, drawn afresh every epoch (train.cnn.augment)."""

    versions: list[str]  # the data versions whose models augment (see training.for_data_version)
    probability: float = Field(ge=0, le=1)  # share of digits changed in an epoch; 0: none
    rotate_degrees: float = Field(ge=0)  # a changed digit turns by a uniform angle within +-this
    thicken: float = Field(ge=0, le=1)  # the chance a changed digit's strokes grow by a pixel
    noise_std: float = Field(ge=0)  # Gaussian noise on the 0..16 pixel scale


class CnnParams(BaseModel):
    """The CNN's architecture and training hyperparameters."""

    epochs: int = Field(gt=0)
    batch_size: int = Field(gt=0)
    learning_rate: float = Field(gt=0)  # the peak of the one-cycle schedule
    weight_decay: float = Field(ge=0)
    channels: tuple[int, int]
    hidden: int = Field(gt=0)
    conv_dropout: float = Field(ge=0, lt=1)
    dropout: float = Field(ge=0, lt=1)
    # None: no augmentation (and what models logged before it existed were trained with).
    augment: AugmentParams | None = None


class TrainParams(BaseModel):
    """Training: the seed and each family's parameters (params.yaml `train`)."""

    seed: int
    threads: int = Field(gt=0)  # fixed, so CPU results do not depend on the machine
    baseline: BaselineParams
    cnn: CnnParams


class RegistryParams(BaseModel):
    """The gate's rule: the floor on val and the tolerance against the champion."""

    min_accuracy: float = Field(ge=0, le=1)  # the gate: a challenger below this never ships
    # The gate's non-inferiority margin: how much lower than the champion a challenger may
    # score on an evaluation set and still be promoted (app/registry.py, `decide`).
    tolerance: float = Field(ge=0, lt=1)


class MonitoringParams(BaseModel):
    """How drift is judged (`monitoring:` in params.yaml); it travels with each model
    in its drift reference (see app/monitoring/drift.py)."""

    window: int = Field(gt=0)  # inputs the API keeps and scores
    min_inputs: int = Field(gt=0)  # below this many, the score would be noise: none is given
    drift_threshold: float = Field(gt=0, le=1)  # the InputDrift alert fires above it
    # Inner bin edges on the 0..16 pixel scale: [1, 4, 8, 12] makes the bins blank (below 1),
    # 1-4, 4-8, 8-12 and 12-16 (full ink).
    pixel_bins: list[float] = Field(min_length=1)
    # Live accuracy: over the last `live_window` labelled predictions of the served model, none
    # (NaN) below `live_min_labels`; the ModelDegraded alert fires below the threshold.
    live_window: int = Field(default=LIVE_WINDOW, gt=0)
    live_min_labels: int = Field(default=LIVE_MIN_LABELS, gt=0)
    live_accuracy_threshold: float = Field(default=LIVE_THRESHOLD, gt=0, le=1)


class Params(BaseModel):
    """Every tunable of the pipeline, grouped by stage, as written in params.yaml."""

    data: DataParams
    validation: ValidationParams
    train: TrainParams
    registry: RegistryParams
    monitoring: MonitoringParams

    @model_validator(mode="after")
    def augment_names_data_versions(self) -> Params:
        """A misspelt version in train.cnn.augment.versions would silently turn it off."""
        augment = self.train.cnn.augment
        unknown = sorted(set(augment.versions) - set(self.data.versions)) if augment else []
        if unknown:
            raise ValueError(f"train.cnn.augment.versions: {unknown} not in data.versions")
        return self


@lru_cache
def get_settings() -> Settings:
    """The settings of this process (cached: the environment is read once)."""
    return Settings()


def load_params(path: Path | None = None) -> Params:
    """Read and check params.yaml."""
    path = path or get_settings().params_path
    with path.open() as handle:
        return Params.model_validate(yaml.safe_load(handle))
