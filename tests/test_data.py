"""Building dataset versions: deterministic bytes, nested versions, a fixed val split."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.config import REPO_ROOT
from app.data import (
    build_version,
    check,
    dir_md5,
    fresh_shifted_batch,
    load_split,
    read_pin,
    shifted_batch,
    to_png_bytes,
    version_shifted,
    version_shifted_val,
)
from app.data.build import SHIFTED_PREFIX, source_splits, version_splits
from app.data.images import from_image
from tests.helpers import file_bytes

# What the recipe makes today, on every machine: a change here changes the data a version means.
# (v1's md5 is pinned in data.dvc and checked against it below.)
KNOWN_MD5 = {
    "v2": "886d8eaccb22a4761e32b9d69c91808c.dir",
    "v3": "f485a1db6114d1c151991e52113d75a4.dir",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory, params) -> dict[str, Path]:
    """Versions v2 and v3 (v2 plus labelled shifted digits), built once for this module."""
    folder = tmp_path_factory.mktemp("built")
    return {version: build_version(params.data, version, folder / version) for version in KNOWN_MD5}


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
    assert len(train_v1) == pytest.approx(params.data.versions["v1"].pool * len(train_v2), abs=10)


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


def test_versions_keep_their_md5(built):
    assert {version: dir_md5(folder) for version, folder in built.items()} == KNOWN_MD5


def test_v3_builds_the_same_bytes_twice_and_validates(params, built, tmp_path):
    again = build_version(params.data, "v3", tmp_path / "again")
    assert file_bytes(again) == file_bytes(built["v3"])
    report = check(built["v3"], params.validation)  # raises on any broken rule, leakage included
    train_v2, val = version_splits(params.data, "v2")
    assert sum(report.counts["train"].values()) == len(train_v2) + params.data.shifted_train.size
    assert sum(report.counts["val"].values()) == len(val)
    assert sum(report.counts["shifted_val"].values()) == params.data.shifted_val.size


def test_v3_is_v2_plus_shifted_copies_and_a_shifted_evaluation_set(params, built):
    v2_files, v3_files = file_bytes(built["v2"]), file_bytes(built["v3"])
    added = v3_files.keys() - v2_files.keys()
    assert {name: v3_files[name] for name in v2_files} == v2_files
    to_train = {name for name in added if name.startswith("train/")}
    assert len(to_train) == params.data.shifted_train.size
    assert all(Path(name).name.startswith(SHIFTED_PREFIX) for name in to_train)
    assert len(added - to_train) == params.data.shifted_val.size
    assert all(name.startswith("shifted_val/") for name in added - to_train)
    for version in ("v1", 2):
        assert version_shifted(params.data, version) is None
        assert version_shifted_val(params.data, version) is None


def test_the_shifted_evaluation_set_is_val_digits_drawn_apart_from_the_drift_batches(params):
    """Shifted copies of val digits (so no model trained on them), labelled, and not the same
    draws as the batch monitoring sends or the fresh batch that judges every model at the end."""
    judged = version_shifted_val(params.data, "v3")
    _, val = source_splits(params.data)
    assert set(judged.ids) <= set(val.ids)
    np.testing.assert_array_equal(val.labels[np.searchsorted(val.ids, judged.ids)], judged.labels)
    assert (judged.images != val.images[np.searchsorted(val.ids, judged.ids)]).any(axis=1).all()
    for batch in (shifted_batch(params.data), fresh_shifted_batch(params.data)):
        common, mine, theirs = np.intersect1d(judged.ids, batch.ids, return_indices=True)
        assert not (judged.images[mine] == batch.images[theirs]).all(axis=1).any()


def test_v3_train_holds_no_val_derived_image(params, built):
    shifted = version_shifted(params.data, "v3")
    pool, val = source_splits(params.data)
    assert set(shifted.ids) <= set(pool.ids) and not set(shifted.ids) & set(val.ids)
    on_disk = {
        int(path.stem.removeprefix(SHIFTED_PREFIX)) for path in built["v3"].glob("train/*/*")
    }
    assert on_disk <= set(pool.ids) and not on_disk & set(val.ids)  # shifted files included
    # The copies are shifted, not the pool images again, and keep their labels.
    originals = pool.images[np.searchsorted(pool.ids, shifted.ids)]
    np.testing.assert_array_equal(
        pool.labels[np.searchsorted(pool.ids, shifted.ids)], shifted.labels
    )
    assert (shifted.images != originals).any(axis=1).all()


def test_fresh_shifted_batch_is_another_draw_of_the_same_kind(params):
    drifted, fresh = shifted_batch(params.data), fresh_shifted_batch(params.data)
    np.testing.assert_array_equal(fresh.images, fresh_shifted_batch(params.data).images)
    assert params.data.shift.fresh_seed != params.data.shift.seed
    assert len(fresh) == len(drifted) == params.data.shift.size
    assert set(fresh.ids) != set(drifted.ids)  # other val digits ...
    common, in_drifted, in_fresh = np.intersect1d(drifted.ids, fresh.ids, return_indices=True)
    same = (drifted.images[in_drifted] == fresh.images[in_fresh]).all(axis=1)
    assert len(common) and not same.any()  # ... and the ones in both are shifted differently
    _, val = source_splits(params.data)
    assert set(fresh.ids) <= set(val.ids)
    np.testing.assert_array_equal(val.labels[np.searchsorted(val.ids, fresh.ids)], fresh.labels)
    assert drifted.images.mean() == pytest.approx(fresh.images.mean(), rel=0.1)
