"""Data stage: build dataset versions, validate them, and version them with DVC."""

from app.data.build import (
    Split,
    build_version,
    fresh_shifted_batch,
    shifted_batch,
    version_shifted,
    version_shifted_val,
    version_splits,
)
from app.data.dvc import dir_md5, dvc, ensure_data, is_clean, read_pin, switch_version
from app.data.images import load_split, read_png, to_png_bytes
from app.data.validate import DataValidationError, Report, check, validate

__all__ = [
    "DataValidationError",
    "Report",
    "Split",
    "build_version",
    "check",
    "dir_md5",
    "dvc",
    "ensure_data",
    "fresh_shifted_batch",
    "is_clean",
    "load_split",
    "read_pin",
    "read_png",
    "shifted_batch",
    "switch_version",
    "to_png_bytes",
    "validate",
    "version_shifted",
    "version_shifted_val",
    "version_splits",
]
