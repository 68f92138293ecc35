"""Building dataset versions: deterministic bytes, nested versions, a fixed val split."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from app.config import REPO_ROOT
from app.data import build_version, dir_md5, load_split, read_pin, shifted_batch, to_png_bytes
from app.data.build import version_splits
from app.data.images import from_image
from tests.conftest import file_bytes


def test_building_twice_gives_identical_bytes(v1_dir, tmp_path, params):
    again = build_version(params.data, "v1", tmp_path / "again")
    assert file_bytes(again) == file_bytes(v1_dir)


def test_the_build_matches_the_md5_pinned_in_data_dvc(tmp_path, params):
    pin = read_pin(REPO_ROOT / "data.dvc")
    built = build_version(params.data, pin.version, tmp_path / "pinned")
    assert dir_md5(built) == pin.md5
    assert sum(1 for path in built.rglob("*.png")) == pin.nfiles


def test_png_round_trip_keeps_every_value():
    values = np.arange(64) % 17  # every level 0..16
    image = Image.open(io.BytesIO(to_png_bytes(values)))
    assert (image.format, image.mode, image.size) == ("PNG", "L", (8, 8))
    np.testing.assert_allclose(from_image(image), values, atol=0.04)


def test_png_bytes_do_not_depend_on_zlib():
    """Level 0 writes one stored deflate block: the rows as they are, no zlib choices involved."""
    png = to_png_bytes(np.full(64, 16))
    idat = png[png.index(b"IDAT") + 4 :]
    assert idat[:2] == b"\x78\x01"  # zlib header for 'no compression'
    assert idat[2] == 0b001  # final block, type 00: stored
    assert int.from_bytes(idat[3:5], "little") == 8 * (1 + 8)  # 8 rows of filter byte + 8 px


def test_versions_nest_and_share_one_val_split(params):
    train_v1, val_v1 = version_splits(params.data, "v1")
    train_v2, val_v2 = version_splits(params.data, 2)
    assert set(train_v1.ids) < set(train_v2.ids)
    np.testing.assert_array_equal(val_v1.ids, val_v2.ids)
    assert not set(train_v2.ids) & set(val_v2.ids)
    assert len(train_v1) == pytest.approx(params.data.versions["v1"] * len(train_v2), abs=10)


def test_splits_are_stratified(params):
    train, val = version_splits(params.data, "v1")
    train_share = np.bincount(train.labels) / len(train)
    val_share = np.bincount(val.labels) / len(val)
    np.testing.assert_allclose(train_share, val_share, atol=0.01)


def test_files_land_under_their_label(v1_dir):
    features, labels = load_split(v1_dir / "train")
    assert features.shape == (len(labels), 64)
    assert features.min() == 0 and features.max() == 16
    assert sorted(p.name for p in v1_dir.iterdir()) == ["train", "val"]


def test_unknown_version_names_the_known_ones(params, tmp_path):
    with pytest.raises(ValueError, match="v9.*v1, v2"):
        build_version(params.data, "v9", tmp_path / "nope")
    assert not (tmp_path / "nope").exists()


def test_building_into_a_full_folder_is_refused(params, v1_dir):
    with pytest.raises(FileExistsError, match="not empty"):
        build_version(params.data, "v1", v1_dir)


def test_shifted_batch_is_drifted_but_labelled(params):
    batch = shifted_batch(params.data)
    again = shifted_batch(params.data)
    np.testing.assert_array_equal(batch.images, again.images)
    assert len(batch) == params.data.shift.size
    assert batch.images.min() >= 0 and batch.images.max() <= 16
    _, val = version_splits(params.data, "v1")
    originals = val.images[np.searchsorted(val.ids, batch.ids)]
    np.testing.assert_array_equal(val.labels[np.searchsorted(val.ids, batch.ids)], batch.labels)
    # Thicker strokes: clearly more ink than the images it came from.
    assert batch.images.mean() > originals.mean() * 1.2
