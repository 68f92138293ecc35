"""Hidden cases of lab 01 (data versioning), which `app.grading` runs in the learner's kernel.

A case runs after the lab's setup, parameters and exercise cells, so the learner's functions
exist. It builds a small dataset of its own in an empty temporary folder, `with
_lab01_empty_folder() as root:` (real digits from scikit-learn, never the lab's check cases),
calls one function, and raises AssertionError in plain words when the answer is wrong; a stub's
NotImplementedError passes through untouched. The grader sends each case's source, calls it and
deletes its name, so nothing it defines lands in the learner's namespace; it needs nothing from
another case, and imports what it uses itself: only the helpers below (`_lab01_write`,
`_lab01_digits`, ...) are sent along.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.grading import Cases

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    # In the learner's kernel: the learner's functions (solutions/01_data_versioning.ipynb).
    class_counts: Callable[[Path], dict[int, int]] = ...
    bad_images: Callable[[Path], list[Path]] = ...
    changed_files: Callable[[Path, Path], dict[str, list[str]]] = ...
    content_fingerprint: Callable[[Path], str] = ...

cases = Cases()


@cases.helper
def _lab01_empty_folder():
    """`with _lab01_empty_folder() as root:` an empty temporary folder, as a Path, deleted after."""
    import contextlib
    import tempfile
    from pathlib import Path

    @contextlib.contextmanager
    def folder():
        with tempfile.TemporaryDirectory() as name:
            yield Path(name)

    return folder()


@cases.helper
def _lab01_splits():
    """The (train, val) splits of data version v1, as app.data builds them."""
    from app import data
    from app.config import load_params

    return data.version_splits(load_params().data, "v1")


@cases.helper
def _lab01_write(path, pixels):
    """64 values on 0..16 as a dataset PNG at `path`, exactly as app.data writes them."""
    from app import data

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.to_png_bytes(pixels))
    return path


@cases.helper
def _lab01_digits(split, label, count):
    """The pixels of the first `count` images of digit `label` in a split."""
    return split.images[split.labels == label][:count]


@cases.helper
def _lab01_small_version(folder):
    """`folder` filled like a version's data: 3 images per digit in train/, 1 in val/ (40)."""
    train, val = _lab01_splits()
    for name, split, count in (("train", train, 3), ("val", val, 1)):
        for label in range(10):
            for i, pixels in enumerate(_lab01_digits(split, label, count)):
                _lab01_write(folder / name / str(label) / f"{name[0]}{label}{i:02d}.png", pixels)
    return folder


# class_counts(split_dir) -> {digit: images}
@cases.exercise(1)
def _counts_three_digits_beside_a_text_file():
    """Three 0s beside a notes.txt, one 5, two 9s, an empty 7 and missing folders."""
    train, _ = _lab01_splits()
    with _lab01_empty_folder() as root:
        split = root / "train"
        for label, count in [(0, 3), (5, 1), (9, 2)]:
            for i, pixels in enumerate(_lab01_digits(train, label, count)):
                _lab01_write(split / str(label) / f"{i:04d}.png", pixels)
        (split / "0" / "notes.txt").write_text("not an image")
        (split / "7").mkdir()  # an empty digit folder; the others are missing
        got = class_counts(split)
        assert isinstance(got, dict) and set(got) == set(range(10)), (
            "class_counts must return a dict whose keys are the ten digits 0 to 9 (int), "
            f"digits without images included; you returned {got!r}"
        )
        expected = dict.fromkeys(range(10), 0) | {0: 3, 5: 1, 9: 2}
        assert got == expected, (
            "a split with three 0s (and a notes.txt beside them), one 5 and two 9s, "
            f"the other digits empty or missing: you counted {got}"
        )


@cases.exercise(1)
def _counts_the_whole_val_split():
    """Every image of v1's val split, counted as numpy counts them."""
    import numpy as np

    _, val = _lab01_splits()
    with _lab01_empty_folder() as root:
        split = root / "val"
        for i, (pixels, label) in enumerate(zip(val.images, val.labels, strict=True)):
            _lab01_write(split / str(label) / f"{i:04d}.png", pixels)
        got = class_counts(split)
        expected = dict(enumerate(np.bincount(val.labels, minlength=10).tolist()))
        assert got == expected, (
            f"in the {len(val)} images of v1's val split the digits count {expected}; "
            f"you counted {got}"
        )


@cases.exercise(1)
def _counts_an_empty_split():
    """An empty split folder: each digit counts 0."""
    with _lab01_empty_folder() as root:
        split = root / "train"
        split.mkdir()
        got = class_counts(split)
        assert got == dict.fromkeys(range(10), 0), (
            "an empty split folder holds no images, so each digit 0 to 9 counts 0; "
            f"you returned {got!r}"
        )


# bad_images(split_dir) -> sorted paths of the PNGs that are not 8x8 mode L
@cases.exercise(2)
def _finds_an_rgb_and_a_wide_image():
    """Two bad images among good ones: an 8×8 RGB one and a 9×8 one."""
    from pathlib import Path

    from PIL import Image

    train, _ = _lab01_splits()
    with _lab01_empty_folder() as root:
        split = root / "train"
        for label in (1, 4):
            for i, pixels in enumerate(_lab01_digits(train, label, 3)):
                _lab01_write(split / str(label) / f"{i:04d}.png", pixels)
        colour = split / "4" / "colour.png"
        Image.new("RGB", (8, 8), (200, 30, 30)).save(colour)
        wide = split / "1" / "wide.png"
        Image.new("L", (9, 8)).save(wide)
        got = bad_images(split)
        assert isinstance(got, list) and all(isinstance(p, Path) for p in got), (
            f"bad_images must return a list of Path objects, not {got!r}"
        )
        names = [p.name for p in got]
        missed = [p.name for p in (colour, wide) if p not in got]
        assert not missed, (
            f"your rule accepted {missed}: colour.png is an 8×8 RGB image (mode RGB, "
            "not L), wide.png is 9×8"
        )
        extra = [p.name for p in got if p not in (colour, wide)]
        assert not extra, f"your rule rejected good 8×8 grayscale digits: {extra[:5]}"
        assert got == sorted([colour, wide]), (
            f"list each bad file once, sorted by path: [wide.png, colour.png], not {names}"
        )


@cases.exercise(2)
def _accepts_good_digits_and_a_blank_one():
    """Twenty good digits and a blank one: nothing is bad."""
    from pathlib import Path

    import numpy as np

    _, val = _lab01_splits()
    with _lab01_empty_folder() as root:
        split = root / "val"
        for label in range(10):
            for i, pixels in enumerate(_lab01_digits(val, label, 2)):
                _lab01_write(split / str(label) / f"{i:04d}.png", pixels)
        _lab01_write(split / "0" / "blank.png", np.zeros(64))  # valid, if empty: 8×8, mode L
        got = bad_images(split)
        assert list(got) == [], (
            "these 21 images are all 8×8 grayscale PNGs (one of them blank), but your "
            f"rule rejected {[Path(p).name for p in got][:5]}"
        )


@cases.exercise(2)
def _finds_junk_transparency_and_a_big_image():
    """A file that is no PNG, one with transparency and a 16×16 one."""
    from PIL import Image

    train, _ = _lab01_splits()
    with _lab01_empty_folder() as root:
        split = root / "train"
        for i, pixels in enumerate(_lab01_digits(train, 2, 3)):
            _lab01_write(split / "2" / f"{i:04d}.png", pixels)
        junk = split / "2" / "junk.png"
        junk.write_bytes(b"these bytes are no PNG")
        alpha = split / "6" / "alpha.png"
        alpha.parent.mkdir()
        Image.new("LA", (8, 8)).save(alpha)
        big = split / "6" / "big.png"
        Image.new("L", (16, 16)).save(big)
        try:
            got = bad_images(split)
        except NotImplementedError:
            raise
        except Exception as error:
            raise AssertionError(
                f"bad_images crashed ({type(error).__name__}: {error}); a file that is "
                "no image at all is a bad image: list it"
            ) from error
        expected = sorted([junk, alpha, big])
        assert sorted(got) == expected, (
            "expected 2/junk.png (no image), 6/alpha.png (mode LA, with transparency) "
            f"and 6/big.png (16×16); you returned {[p.name for p in got]}"
        )


# changed_files(old_dir, new_dir) -> {"added": [...], "removed": [...], "modified": [...]}
@cases.exercise(3)
def _finds_one_file_added_removed_and_modified():
    """One file of each kind, and one with the same bytes but a newer date."""
    import os

    import numpy as np

    train, _ = _lab01_splits()
    with _lab01_empty_folder() as root:
        old, new = root / "old", root / "new"
        a, b, c = _lab01_digits(train, 1, 3)
        _lab01_write(old / "train/1/0001.png", a)
        _lab01_write(old / "train/1/0002.png", b)
        _lab01_write(old / "val/1/0003.png", c)
        os.utime(old / "train/1/0001.png", (0, 0))  # an old date
        _lab01_write(new / "train/1/0001.png", a)  # the same bytes, today
        _lab01_write(new / "train/1/0002.png", np.clip(b + 1, 0, 16))  # other pixels, same size
        _lab01_write(new / "train/4/0004.png", _lab01_digits(train, 4, 1)[0])
        got = changed_files(old, new)
        assert isinstance(got, dict) and set(got) == {"added", "removed", "modified"}, (
            f"return a dict with the keys 'added', 'removed' and 'modified', not {got!r}"
        )
        why = {
            "added": "train/4/0004.png is only in the new folder",
            "removed": "val/1/0003.png is only in the old one",
            "modified": "train/1/0002.png has other bytes (but the same size); "
            "train/1/0001.png has the same bytes, only a newer date",
        }
        for kind, path in [
            ("added", "train/4/0004.png"),
            ("removed", "val/1/0003.png"),
            ("modified", "train/1/0002.png"),
        ]:
            assert list(got[kind]) == [path], (
                f"{kind}: expected ['{path}'] ({why[kind]}); you returned {got[kind]!r}"
            )


@cases.exercise(3)
def _finds_nothing_between_equal_folders():
    """The same 40 files, written a moment later: nothing changed."""
    with _lab01_empty_folder() as root:
        old, new = root / "old", root / "new"
        _lab01_small_version(old)
        _lab01_small_version(new)  # the same files, byte for byte, written a moment later
        got = changed_files(old, new)
        expected = {"added": [], "removed": [], "modified": []}
        assert got == expected, (
            "two folders holding the same 40 files, byte for byte: nothing was added, "
            f"removed or modified, but you returned {got!r}"
        )


@cases.exercise(3)
def _sees_a_moved_image_as_added_and_removed():
    """An image relabelled from 3 to 5 (moved), and three new ones."""
    train, val = _lab01_splits()
    with _lab01_empty_folder() as root:
        old, new = root / "old", root / "new"
        x, y = _lab01_digits(train, 3, 2)
        _lab01_write(old / "train/3/0100.png", x)
        _lab01_write(old / "train/3/0101.png", y)
        _lab01_write(new / "train/5/0100.png", x)  # moved: relabelled from 3 to 5
        _lab01_write(new / "train/3/0101.png", y)
        for path, label in [
            ("val/9/0200.png", 9),
            ("train/0/0300.png", 0),
            ("train/9/0050.png", 9),
        ]:
            _lab01_write(new / path, _lab01_digits(val, label, 1)[0])
        got = changed_files(old, new)
        added = ["train/0/0300.png", "train/5/0100.png", "train/9/0050.png", "val/9/0200.png"]
        assert list(got["added"]) == added, (
            f"added: expected {added} (relative paths as str with '/', sorted), one of "
            f"them train/3/0100.png moved to train/5; you returned {got['added']!r}"
        )
        assert list(got["removed"]) == ["train/3/0100.png"], (
            "removed: an image moved away from train/3/0100.png is gone from that path; "
            f"you returned {got['removed']!r}"
        )
        assert list(got["modified"]) == [], (
            f"modified: no path holds other bytes than before; you returned {got['modified']!r}"
        )


# content_fingerprint(folder) -> str: pixels and <split>/<digit> count, names and bytes do not
@cases.exercise(4)
def _fingerprint_ignores_place_time_and_names():
    """The same images elsewhere, later, or under other names: one fingerprint."""
    with _lab01_empty_folder() as root:
        first = content_fingerprint(_lab01_small_version(root / "original"))
        assert isinstance(first, str) and first, (
            f"content_fingerprint must return a non-empty str, not {first!r}"
        )
        again = content_fingerprint(_lab01_small_version(root / "copy"))
        assert again == first, (
            "the same 40 images in another folder got another fingerprint: where the "
            "folder is, and when its files were written, must not count"
        )
        renamed = _lab01_small_version(root / "renamed")
        a, b, c = sorted((renamed / "train" / "6").glob("*.png"))
        a.rename(a.with_name("swap.png"))
        b.rename(a)
        a.with_name("swap.png").rename(b)  # a and b swapped names
        c.rename(c.with_name("zz-renamed.png"))
        assert content_fingerprint(renamed) == first, (
            "swapping the names of two images in train/6 and renaming a third changed "
            "your fingerprint: file names must not count"
        )


@cases.exercise(4)
def _fingerprint_reads_pixels_not_bytes():
    """Re-saved with other bytes: the same; one pixel repainted: another."""
    from PIL import Image

    from app import data

    with _lab01_empty_folder() as root:
        first = content_fingerprint(_lab01_small_version(root / "original"))
        resaved = _lab01_small_version(root / "resaved")
        for path in sorted(resaved.rglob("*.png"))[:5]:
            with Image.open(path) as image:
                pixels = image.copy()
            pixels.save(path, compress_level=9)  # other bytes, the same pixels
        assert content_fingerprint(resaved) == first, (
            "five images re-saved with stronger PNG compression (the same pixels, other "
            "bytes) changed your fingerprint: hash the pixels (data.read_png), not the bytes"
        )
        repainted = _lab01_small_version(root / "repainted")
        path = sorted((repainted / "val" / "2").glob("*.png"))[0]
        values = data.read_png(path)
        values[27] = 16 - values[27]
        path.write_bytes(data.to_png_bytes(values))
        assert content_fingerprint(repainted) != first, (
            "one pixel of the image in val/2 changed, but your fingerprint did not"
        )


@cases.exercise(4)
def _fingerprint_counts_digit_split_and_copies():
    """An image relabelled, moved to val, or copied: another fingerprint."""
    import shutil

    with _lab01_empty_folder() as root:
        first = content_fingerprint(_lab01_small_version(root / "original"))
        relabelled = _lab01_small_version(root / "relabelled")
        moved = sorted((relabelled / "train" / "3").glob("*.png"))[0]
        moved.rename(relabelled / "train" / "8" / moved.name)
        assert content_fingerprint(relabelled) != first, (
            "an image moved from train/3 to train/8 (it is now labelled 8), but your "
            "fingerprint did not change: the digit folder must count"
        )
        to_val = _lab01_small_version(root / "to-val")
        moved = sorted((to_val / "train" / "3").glob("*.png"))[0]
        moved.rename(to_val / "val" / "3" / moved.name)
        assert content_fingerprint(to_val) != first, (
            "an image moved from train/3 to val/3 (it is no longer trained on), but your "
            "fingerprint did not change: the split must count too"
        )
        doubled = _lab01_small_version(root / "doubled")
        source = sorted((doubled / "train" / "5").glob("*.png"))[0]
        shutil.copy(source, source.with_name("copy.png"))
        assert content_fingerprint(doubled) != first, (
            "a second copy of an image in train/5 (one more example to learn from) left "
            "your fingerprint as it was: keep duplicates, sort a list rather than a set"
        )
