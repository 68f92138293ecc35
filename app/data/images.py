"""The on-disk form of a digit: an 8x8 grayscale PNG whose pixels map to the 0..16 scale."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

SIDE = 8
MAX_VALUE = 16  # scikit-learn's digits count ink from 0 to 16 per pixel
CLASSES = tuple(str(digit) for digit in range(10))


def to_png_bytes(values: np.ndarray) -> bytes:
    """Encode 64 values in 0..16 as a deterministic 8x8 grayscale PNG.

    Compression level 0 writes stored (uncompressed) deflate blocks, so the bytes do not
    depend on the zlib build: the same version has the same md5 on every machine.
    """
    pixels = np.rint(np.asarray(values, dtype=float).reshape(SIDE, SIDE) * 255 / MAX_VALUE)
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="PNG", compress_level=0)
    return buffer.getvalue()


def from_image(image: Image.Image) -> np.ndarray:
    """Decode an 8x8 grayscale image into 64 floats on the 0..16 scale."""
    return np.asarray(image, dtype=np.float32).reshape(-1) * MAX_VALUE / 255


def read_png(path: Path) -> np.ndarray:
    """Read one dataset PNG as 64 floats on the 0..16 scale."""
    with Image.open(path) as image:
        return from_image(image)


def load_split(split_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Load every `<digit>/<id>.png` under a split folder as (X of shape n x 64, y)."""
    paths = sorted(split_dir.glob("[0-9]/*.png"))
    features = np.stack([read_png(path) for path in paths]) if paths else np.empty((0, 64))
    labels = np.array([int(path.parent.name) for path in paths], dtype=np.int64)
    return features.astype(np.float32), labels
