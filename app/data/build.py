"""Materialise dataset versions and the drifted batch from scikit-learn's bundled digits."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.config import DataParams, ShiftParams
from app.data.images import MAX_VALUE, SHIFTED_VAL, SIDE, to_png_bytes

SHIFTED_PREFIX = "shifted-"  # a shifted copy of digit 123 is `<label>/shifted-0123.png`


@dataclass(frozen=True)
class Split:
    """Images (n x 64, 0..16), labels, and stable ids (the row in scikit-learn's dataset)."""

    images: np.ndarray
    labels: np.ndarray
    ids: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, rows: np.ndarray) -> Split:
        return Split(self.images[rows], self.labels[rows], self.ids[rows])


def source_splits(params: DataParams) -> tuple[Split, Split]:
    """The training pool and the val split: fixed by the seed, the same in every version."""
    from sklearn.datasets import load_digits  # here: the API imports app.data, never this
    from sklearn.model_selection import train_test_split

    digits = load_digits()  # 1,797 images shipped inside scikit-learn: nothing is downloaded
    everything = Split(digits.data, digits.target, np.arange(len(digits.target)))
    pool_rows, val_rows = train_test_split(
        np.arange(len(everything)),
        test_size=params.split.val_fraction,
        stratify=everything.labels,
        random_state=params.split.seed,
    )
    return everything.take(np.sort(pool_rows)), everything.take(np.sort(val_rows))


def version_name(version: str | int) -> str:
    """Accept `2`, `"2"` or `"v2"` and answer `"v2"`."""
    text = str(version)
    return text if text.startswith("v") else f"v{text}"


FIELD_SUFFIX = "+field"  # v1+field2: v1 with the second round of labels from the field


def base_version(name: str) -> str:
    """The params.yaml version a data version was made from: `v3+field2` -> `v3`."""
    return name.split(FIELD_SUFFIX)[0]


def version_splits(params: DataParams, version: str | int) -> tuple[Split, Split]:
    """The (train, val) original digits of a version: a stratified share of the pool, val
    unchanged. The shifted copies some versions add come from `version_shifted`."""
    name = version_name(version)
    if name not in params.versions:
        known = ", ".join(sorted(params.versions))
        raise ValueError(f"unknown dataset version {name!r}; params.yaml defines: {known}")
    pool, val = source_splits(params)
    # One fixed shuffle per class, cut at the version's share: every version nests in the next.
    rng = np.random.default_rng(params.split.seed)
    keep = []
    for label in np.unique(pool.labels):
        rows = rng.permutation(np.flatnonzero(pool.labels == label))
        keep.append(rows[: round(len(rows) * params.versions[name].pool)])
    return pool.take(np.sort(np.concatenate(keep))), val


def version_shifted(params: DataParams, version: str | int) -> Split | None:
    """The labelled shifted digits a version adds to its train split, or None if it adds none.

    They are shifted copies of the version's own training digits: a shifted val digit in
    train would be that val digit seen in disguise, and val would overrate the model.
    """
    train, _ = version_splits(params, version)
    if not params.versions[version_name(version)].include_shifted:
        return None
    return shifted_sample(train, params.shifted_train)


def version_shifted_val(params: DataParams, version: str | int) -> Split | None:
    """The labelled shifted evaluation set a version brings (`shifted_val/`), or None.

    Shifted copies of val digits (never train digits: a model saw those, and augmentation shows
    it their shifted forms), with a seed of their own: other digits, angles and noise than the
    drift batches monitoring sends, so the fresh batch stays unseen by every choice we make.
    """
    if not params.versions[version_name(version)].include_shifted:
        return None
    _, val = source_splits(params)
    return shifted_sample(val, params.shifted_val)


def write_split(split: Split, split_dir: Path, prefix: str = "") -> None:
    """Write `<digit>/<prefix><id>.png` files for one split."""
    for image, label, sample_id in zip(split.images, split.labels, split.ids, strict=True):
        path = split_dir / str(label) / f"{prefix}{sample_id:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(to_png_bytes(image))


def build_version(params: DataParams, version: str | int, out_dir: Path) -> Path:
    """Write a version as `out_dir/train`, `out_dir/val` and, for a version that brings
    labelled shifted digits, `out_dir/shifted_val` (out_dir must be new or empty)."""
    train, val = version_splits(params, version)
    shifted, shifted_val = version_shifted(params, version), version_shifted_val(params, version)
    out_dir.mkdir(parents=True, exist_ok=True)
    if any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty: build a version into a new folder")
    write_split(train, out_dir / "train")
    if shifted is not None:
        write_split(shifted, out_dir / "train", prefix=SHIFTED_PREFIX)
    write_split(val, out_dir / "val")
    if shifted_val is not None:
        write_split(shifted_val, out_dir / SHIFTED_VAL)
    return out_dir


@contextmanager
def staging_dir(target: Path) -> Iterator[Path]:
    """A fresh folder next to `target` (same filesystem, so it can be renamed into place).

    Whatever is not swapped in with `replace_dir` is removed on the way out.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-next-", dir=target.parent))
    # mkdtemp makes it private (0700): data/ must stay readable by other users, the containers'
    # included (the trainer reads it through a read-only mount, as another user).
    staging.chmod(0o755)
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def replace_dir(new: Path, target: Path) -> None:
    """Swap `new` in as `target` with renames, so `target` is never half-written."""
    old = target.with_name(f".{target.name}-old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def shift_images(images: np.ndarray, params: ShiftParams) -> np.ndarray:
    """Rotate, thicken and add noise to digits: the kind of drift a new camera would bring."""
    from scipy import ndimage

    rng = np.random.default_rng(params.seed)
    shifted = []
    for image in images.reshape(-1, SIDE, SIDE):
        angle = rng.uniform(-params.rotate_degrees, params.rotate_degrees)
        out = ndimage.rotate(image, angle, reshape=False, order=1, mode="constant")
        if params.thicken:
            out = ndimage.grey_dilation(out, size=(1 + params.thicken, 1 + params.thicken))
        out = out + rng.normal(0, params.noise_std, out.shape)
        shifted.append(np.clip(np.rint(out), 0, MAX_VALUE))
    return np.stack(shifted).reshape(len(images), SIDE * SIDE)


def shifted_sample(split: Split, params: ShiftParams) -> Split:
    """`params.size` digits of `split` (all, if it holds fewer), picked by the seed, shifted."""
    rng = np.random.default_rng(params.seed)
    rows = np.sort(rng.choice(len(split), size=min(params.size, len(split)), replace=False))
    picked = split.take(rows)
    return Split(shift_images(picked.images, params), picked.labels, picked.ids)


def shifted_batch(params: DataParams, seed: int | None = None) -> Split:
    """A drifted batch drawn from the val split (so its labels are known and unseen in training).

    `seed` replaces `shift.seed` for another batch made the same way: see `fresh_shifted_batch`.
    """
    _, val = source_splits(params)
    spec = params.shift if seed is None else params.shift.model_copy(update={"seed": seed})
    return shifted_sample(val, spec)


def fresh_shifted_batch(params: DataParams) -> Split:
    """A second drifted batch (`shift.fresh_seed`), other draws of the same transform: no model
    trains on it and no setting was chosen by it, so it measures how well models handle drift."""
    return shifted_batch(params, seed=params.shift.fresh_seed)
