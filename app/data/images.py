"""The on-disk form of a digit: an 8x8 grayscale PNG whose pixels map to the 0..16 scale."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

SIDE = 8
MAX_VALUE = 16  # scikit-learn's digits count ink from 0 to 16 per pixel
CLASSES = tuple(str(digit) for digit in range(10))
# The evaluation sets of a data folder: val, the labelled shifted digits some versions bring (the
# traffic their models must serve), and the held-out share of labels from the field (versions
# made by `python -m app.data field`). The gate scores every one the data holds.
SHIFTED_VAL = "shifted_val"
FIELD_VAL = "field_val"
EVALUATION_SETS = ("val", SHIFTED_VAL, FIELD_VAL)


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


BITMAP = 32  # scikit-learn's digits were 32x32 black-and-white bitmaps, counted in 4x4 blocks


def image_to_features(image: Image.Image) -> np.ndarray:
    """Turn a photo or drawing of one digit into 64 values on 0..16, the way the dataset was made.

    The UCI digits behind scikit-learn's dataset were scanned, size-normalised into a 32x32
    bitmap and counted in 4x4 blocks (0..16 ink pixels per block). We do the same: gray, ink
    made bright, cropped to the ink, scaled to fit 32x32, thresholded, counted per block.
    """
    gray = np.asarray(ImageOps.exif_transpose(image).convert("L"), dtype=np.float32)
    if np.median(gray) > 127:  # dark ink on light paper: make the ink the bright part
        gray = 255 - gray
    ink = gray > max(gray.max() / 2, 32)
    if not ink.any():
        raise ValueError("the image holds no digit: no ink stands out from the background")
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    crop = gray[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    scale = BITMAP / max(crop.shape)
    height, width = (max(1, round(side * scale)) for side in crop.shape)
    fitted = Image.fromarray(crop.astype(np.uint8)).resize((width, height), Image.Resampling.BOX)
    canvas = Image.new("L", (BITMAP, BITMAP))
    canvas.paste(fitted, ((BITMAP - width) // 2, (BITMAP - height) // 2))
    bitmap = np.asarray(canvas) > 127
    blocks = bitmap.reshape(SIDE, BITMAP // SIDE, SIDE, BITMAP // SIDE).sum(axis=(1, 3))
    return blocks.reshape(-1).astype(np.float32)
