"""Data stage: build dataset versions, validate them, and version them with DVC.

Its names load on first use (`app.lazy`): the API imports `app.data.images` alone, without the
builder and scikit-learn's datasets.
"""

from app.lazy import exports

__getattr__, __all__ = exports(
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
        "images": ["load_split", "read_png", "to_png_bytes"],
        "validate": ["DataValidationError", "Report", "check", "validate"],
    },
)
