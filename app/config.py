"""Settings (environment) and parameters (params.yaml): the only place either is read."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]


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
    jupyter_port: int = 8888

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def dvc_file(self) -> Path:
        return self.root / "data.dvc"

    @property
    def notebooks_dir(self) -> Path:
        return self.root / "notebooks"

    @property
    def runs_dir(self) -> Path:
        """Executed copies of the notebooks (git-ignored)."""
        return self.root / "runs"


class SplitParams(BaseModel):
    seed: int
    val_fraction: float = Field(gt=0, lt=1)


class ShiftParams(BaseModel):
    """How the drifted batch differs from the training data."""

    seed: int
    size: int = Field(gt=0)
    rotate_degrees: float
    thicken: int = Field(ge=0)
    noise_std: float = Field(ge=0)


class DataParams(BaseModel):
    split: SplitParams
    # Version name -> fraction of the training pool it holds; versions are nested.
    versions: dict[str, float]
    shift: ShiftParams


class ValidationParams(BaseModel):
    min_per_class_train: int = Field(ge=1)
    min_per_class_val: int = Field(ge=1)


class Params(BaseModel):
    """Every tunable of the pipeline, grouped by stage, as written in params.yaml."""

    data: DataParams
    validation: ValidationParams


@lru_cache
def get_settings() -> Settings:
    """The settings of this process (cached: the environment is read once)."""
    return Settings()


def load_params(path: Path | None = None) -> Params:
    """Read and check params.yaml."""
    path = path or get_settings().params_path
    with path.open() as handle:
        return Params.model_validate(yaml.safe_load(handle))
