"""Data stage: build dataset versions, validate them, and version them with DVC.

Reading and validating images loads at once (light: Pillow and numpy). The builder and DVC,
which bring scikit-learn's datasets, load on first use (`app.lazy`): the API imports
`app.data.images` without them.
"""

from app.data.images import load_split, read_png, to_png_bytes
from app.data.validate import DataValidationError, Report, check, validate
from app.lazy import exports

__getattr__, _lazy = exports(
    __name__,
    {
        "build": [
            "Split",
            "build_version",
            "fresh_shifted_batch",
            "shifted_batch",
            "version_shifted",
            "version_shifted_val",
            "version_splits",
        ],
        "dvc": ["dir_md5", "dvc", "ensure_data", "is_clean", "read_pin", "switch_version"],
    },
)
__all__ = [
    "DataValidationError",
    "Report",
    "check",
    "load_split",
    "read_png",
    "to_png_bytes",
    "validate",
    *_lazy,
]
