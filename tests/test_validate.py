"""Data validation: every kind of bad data is caught, with its own rule and the file named."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from app.data import DataValidationError, check, validate


def first_png(folder):
    return sorted(folder.glob("*.png"))[0]


def test_the_built_version_is_valid(v1_dir, params):
    report = validate(v1_dir, params.validation)
    assert report.ok, report.summary()
    assert sum(report.counts["val"].values()) == 360


def test_corrupt_file(data_copy, params):
    victim = first_png(data_copy / "train" / "3")
    victim.write_bytes(victim.read_bytes()[:30])  # truncated mid-header
    report = validate(data_copy, params.validation)
    assert report.rules_broken == {"unreadable"}
    assert f"train/3/{victim.name}" in report.summary()


def test_wrong_size(data_copy, params):
    victim = first_png(data_copy / "val" / "5")
    Image.new("L", (16, 16)).save(victim)
    report = validate(data_copy, params.validation)
    assert report.rules_broken == {"wrong-size"}
    assert f"val/5/{victim.name} (16x16)" in report.summary()


@pytest.mark.parametrize(("mode", "fmt"), [("RGB", "PNG"), ("L", "JPEG")])
def test_wrong_format(data_copy, params, mode, fmt):
    victim = first_png(data_copy / "train" / "8")
    Image.new(mode, (8, 8)).save(victim, format=fmt)
    report = validate(data_copy, params.validation)
    assert report.rules_broken == {"wrong-format"}
    assert f"{fmt} in mode {mode}" in report.summary()


def test_missing_class(data_copy, params):
    shutil.rmtree(data_copy / "val" / "4")
    report = validate(data_copy, params.validation)
    assert report.rules_broken == {"missing-class"}
    assert "val/4 (no images)" in report.summary()


def test_too_few_of_a_class(data_copy, params):
    for path in sorted((data_copy / "train" / "6").glob("*.png"))[5:]:
        path.unlink()
    report = validate(data_copy, params.validation)
    assert report.rules_broken == {"too-few"}
    assert f"train/6 (5 < {params.validation.min_per_class_train})" in report.summary()


def test_leakage_is_found_by_pixels_not_names(data_copy, params):
    source = first_png(data_copy / "val" / "2")
    # Re-encode with other settings: different bytes and name, same pixels.
    Image.open(source).save(data_copy / "train" / "2" / "copy.png", compress_level=9)
    report = validate(data_copy, params.validation)
    assert report.rules_broken == {"leakage"}
    assert f"val/2/{source.name} (same pixels as train/2/copy.png)" in report.summary()


@pytest.mark.parametrize(
    "stray", ["notes.txt", "train/notes.txt", "train/3/.DS_Store", "val/1/0001.jpg", "train/3/x/"]
)
def test_stray_file(data_copy, params, stray):
    path = data_copy / stray
    if stray.endswith("/"):
        path.mkdir()
    else:
        path.write_text("stray")
    report = validate(data_copy, params.validation)
    assert report.rules_broken == {"stray-file"}
    assert stray.rstrip("/") in report.summary()


@pytest.mark.parametrize("folder", ["10", "seven", "-1"])
def test_bad_label_folder(data_copy, params, folder):
    shutil.copytree(data_copy / "train" / "7", data_copy / "train" / folder)
    report = validate(data_copy, params.validation)
    assert report.rules_broken == {"bad-label"}
    assert f"folder '{folder}'" in report.summary()


def test_missing_split(data_copy, params):
    shutil.rmtree(data_copy / "val")
    report = validate(data_copy, params.validation)
    assert report.rules_broken == {"missing-split"}


def test_every_problem_is_reported_at_once(data_copy, params):
    first_png(data_copy / "train" / "0").write_bytes(b"junk")
    (data_copy / "stray.csv").write_text("a,b")
    shutil.rmtree(data_copy / "val" / "9")
    report = validate(data_copy, params.validation)
    assert report.rules_broken == {"unreadable", "stray-file", "missing-class"}


def test_check_raises_with_the_report(data_copy, params):
    first_png(data_copy / "train" / "0").write_bytes(b"junk")
    with pytest.raises(DataValidationError, match=r"\[unreadable\]") as caught:
        check(data_copy, params.validation)
    assert not caught.value.report.ok


def test_cli_exits_non_zero_and_lists_the_files(data_copy):
    victim = first_png(data_copy / "train" / "1")
    Image.fromarray(np.zeros((8, 9), dtype=np.uint8)).save(victim)
    done = subprocess.run(
        [sys.executable, "-m", "app.data", "validate", str(data_copy)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert f"train/1/{victim.name} (9x8)" in done.stderr
    assert "[wrong-size]" in done.stderr


def test_cli_passes_good_data(v1_dir):
    done = subprocess.run(
        [sys.executable, "-m", "app.data", "validate", str(v1_dir)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    train, val = (len(list((v1_dir / split).rglob("*.png"))) for split in ("train", "val"))
    assert f"valid (train {train}, val {val} images)" in done.stderr
