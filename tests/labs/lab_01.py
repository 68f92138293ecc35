"""Hidden cases of lab 01 (data versioning), which `app.grading` runs in the learner's kernel.

A case runs after the lab's setup, parameters and exercise cells, so the learner's functions
exist. It builds a small dataset of its own in an empty temporary folder `root` (real digits from
scikit-learn, never the lab's check cases), calls one function, and raises AssertionError in plain
words when the answer is wrong; a stub's NotImplementedError passes through untouched. Each case
is wrapped in a function, so nothing it defines lands in the learner's namespace, and needs
nothing from another case.
"""

from __future__ import annotations

from textwrap import dedent, indent

# What every case can use. Comments, not docstrings: a case is itself a string.
PRELUDE = """
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from app import data
from app.config import load_params

train, val = data.version_splits(load_params().data, "v1")


def write(path, pixels):
    # 64 values on 0..16 as a dataset PNG, exactly as app.data writes them
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.to_png_bytes(pixels))
    return path


def digits(split, label, count):
    # the pixels of the first `count` images of digit `label` in a split
    return split.images[split.labels == label][:count]


def small_version(folder):
    # a data folder like a version's: 3 images per digit in train/, 1 in val/ (40 files)
    for name, split, count in (("train", train, 3), ("val", val, 1)):
        for label in range(10):
            for i, pixels in enumerate(digits(split, label, count)):
                write(folder / name / str(label) / f"{name[0]}{label}{i:02d}.png", pixels)
    return folder
"""


def case(body: str) -> str:
    """One snippet: `body` runs in an empty folder `root`, with PRELUDE's names, in a function."""
    inner = (
        dedent(PRELUDE)
        + "\nwith tempfile.TemporaryDirectory() as name:\n    root = Path(name)\n"
        + indent(dedent(body), "    ")
    )
    return f"def _lab01_case():\n{indent(inner, '    ')}\n\n_lab01_case()\n"


EXERCISES: dict[int, list[str]] = {
    # class_counts(split_dir) -> {digit: images}
    1: [
        case("""
            split = root / "train"
            for label, count in [(0, 3), (5, 1), (9, 2)]:
                for i, pixels in enumerate(digits(train, label, count)):
                    write(split / str(label) / f"{i:04d}.png", pixels)
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
        """),
        case("""
            split = root / "val"
            for i, (pixels, label) in enumerate(zip(val.images, val.labels)):
                write(split / str(label) / f"{i:04d}.png", pixels)
            got = class_counts(split)
            expected = dict(enumerate(np.bincount(val.labels, minlength=10).tolist()))
            assert got == expected, (
                f"in the {len(val)} images of v1's val split the digits count {expected}; "
                f"you counted {got}"
            )
        """),
        case("""
            split = root / "train"
            split.mkdir()
            got = class_counts(split)
            assert got == dict.fromkeys(range(10), 0), (
                "an empty split folder holds no images, so each digit 0 to 9 counts 0; "
                f"you returned {got!r}"
            )
        """),
    ],
    # bad_images(split_dir) -> sorted paths of the PNGs that are not 8x8 mode L
    2: [
        case("""
            split = root / "train"
            for label in (1, 4):
                for i, pixels in enumerate(digits(train, label, 3)):
                    write(split / str(label) / f"{i:04d}.png", pixels)
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
        """),
        case("""
            split = root / "val"
            for label in range(10):
                for i, pixels in enumerate(digits(val, label, 2)):
                    write(split / str(label) / f"{i:04d}.png", pixels)
            write(split / "0" / "blank.png", np.zeros(64))  # valid, if empty: 8×8, mode L
            got = bad_images(split)
            assert list(got) == [], (
                "these 21 images are all 8×8 grayscale PNGs (one of them blank), but your "
                f"rule rejected {[Path(p).name for p in got][:5]}"
            )
        """),
        case("""
            split = root / "train"
            for i, pixels in enumerate(digits(train, 2, 3)):
                write(split / "2" / f"{i:04d}.png", pixels)
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
        """),
    ],
    # changed_files(old_dir, new_dir) -> {"added": [...], "removed": [...], "modified": [...]}
    3: [
        case("""
            old, new = root / "old", root / "new"
            a, b, c = digits(train, 1, 3)
            write(old / "train/1/0001.png", a)
            write(old / "train/1/0002.png", b)
            write(old / "val/1/0003.png", c)
            os.utime(old / "train/1/0001.png", (0, 0))  # an old date
            write(new / "train/1/0001.png", a)  # the same bytes, today
            write(new / "train/1/0002.png", np.clip(b + 1, 0, 16))  # other pixels, same size
            write(new / "train/4/0004.png", digits(train, 4, 1)[0])
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
        """),
        case("""
            old, new = root / "old", root / "new"
            small_version(old)
            small_version(new)  # the same files, byte for byte, written a moment later
            got = changed_files(old, new)
            expected = {"added": [], "removed": [], "modified": []}
            assert got == expected, (
                "two folders holding the same 40 files, byte for byte: nothing was added, "
                f"removed or modified, but you returned {got!r}"
            )
        """),
        case("""
            old, new = root / "old", root / "new"
            x, y = digits(train, 3, 2)
            write(old / "train/3/0100.png", x)
            write(old / "train/3/0101.png", y)
            write(new / "train/5/0100.png", x)  # moved: relabelled from 3 to 5
            write(new / "train/3/0101.png", y)
            for path, label in [("val/9/0200.png", 9), ("train/0/0300.png", 0),
                                ("train/9/0050.png", 9)]:
                write(new / path, digits(val, label, 1)[0])
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
        """),
    ],
    # content_fingerprint(folder) -> str: pixels and <split>/<digit> count, names and bytes do not
    4: [
        case("""
            first = content_fingerprint(small_version(root / "original"))
            assert isinstance(first, str) and first, (
                f"content_fingerprint must return a non-empty str, not {first!r}"
            )
            again = content_fingerprint(small_version(root / "copy"))
            assert again == first, (
                "the same 40 images in another folder got another fingerprint: where the "
                "folder is, and when its files were written, must not count"
            )
            renamed = small_version(root / "renamed")
            a, b, c = sorted((renamed / "train" / "6").glob("*.png"))
            a.rename(a.with_name("swap.png"))
            b.rename(a)
            a.with_name("swap.png").rename(b)  # a and b swapped names
            c.rename(c.with_name("zz-renamed.png"))
            assert content_fingerprint(renamed) == first, (
                "swapping the names of two images in train/6 and renaming a third changed "
                "your fingerprint: file names must not count"
            )
        """),
        case("""
            first = content_fingerprint(small_version(root / "original"))
            resaved = small_version(root / "resaved")
            for path in sorted(resaved.rglob("*.png"))[:5]:
                with Image.open(path) as image:
                    pixels = image.copy()
                pixels.save(path, compress_level=9)  # other bytes, the same pixels
            assert content_fingerprint(resaved) == first, (
                "five images re-saved with stronger PNG compression (the same pixels, other "
                "bytes) changed your fingerprint: hash the pixels (data.read_png), not the bytes"
            )
            repainted = small_version(root / "repainted")
            path = sorted((repainted / "val" / "2").glob("*.png"))[0]
            values = data.read_png(path)
            values[27] = 16 - values[27]
            path.write_bytes(data.to_png_bytes(values))
            assert content_fingerprint(repainted) != first, (
                "one pixel of the image in val/2 changed, but your fingerprint did not"
            )
        """),
        case("""
            first = content_fingerprint(small_version(root / "original"))
            relabelled = small_version(root / "relabelled")
            moved = sorted((relabelled / "train" / "3").glob("*.png"))[0]
            moved.rename(relabelled / "train" / "8" / moved.name)
            assert content_fingerprint(relabelled) != first, (
                "an image moved from train/3 to train/8 (it is now labelled 8), but your "
                "fingerprint did not change: the digit folder must count"
            )
            to_val = small_version(root / "to-val")
            moved = sorted((to_val / "train" / "3").glob("*.png"))[0]
            moved.rename(to_val / "val" / "3" / moved.name)
            assert content_fingerprint(to_val) != first, (
                "an image moved from train/3 to val/3 (it is no longer trained on), but your "
                "fingerprint did not change: the split must count too"
            )
            doubled = small_version(root / "doubled")
            source = sorted((doubled / "train" / "5").glob("*.png"))[0]
            shutil.copy(source, source.with_name("copy.png"))
            assert content_fingerprint(doubled) != first, (
                "a second copy of an image in train/5 (one more example to learn from) left "
                "your fingerprint as it was: keep duplicates, sort a list rather than a set"
            )
        """),
    ],
}
