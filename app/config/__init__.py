"""Settings (environment) and parameters (params.yaml): the only place either is read."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

from app.config.params import (
    LIVE_MIN_LABELS,
    LIVE_THRESHOLD,
    LIVE_WINDOW,
    AugmentParams,
    BaselineParams,
    CnnParams,
    DataParams,
    DriftBatchParams,
    FieldParams,
    LiveParams,
    MonitoringParams,
    Params,
    RegistryParams,
    ShiftParams,
    SplitParams,
    TrainParams,
    ValidationParams,
    VersionParams,
)
from app.config.settings import REPO_ROOT, Settings

__all__ = [
    "LIVE_MIN_LABELS",
    "LIVE_THRESHOLD",
    "LIVE_WINDOW",
    "REPO_ROOT",
    "AugmentParams",
    "BaselineParams",
    "CnnParams",
    "DataParams",
    "DriftBatchParams",
    "FieldParams",
    "LiveParams",
    "MonitoringParams",
    "Params",
    "RegistryParams",
    "Settings",
    "ShiftParams",
    "SplitParams",
    "TrainParams",
    "ValidationParams",
    "VersionParams",
    "get_settings",
    "load_params",
]


@lru_cache
def get_settings() -> Settings:
    """The settings of this process (cached: the environment is read once)."""
    return Settings()


def load_params(path: Path | None = None) -> Params:
    """Read and check params.yaml."""
    path = path or get_settings().params_path
    with path.open() as handle:
        return Params.model_validate(yaml.safe_load(handle))
