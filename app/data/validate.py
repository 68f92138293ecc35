"""Check a data folder before anything trains on it; report every broken rule and file."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from app.config import ValidationParams
from app.data.images import CLASSES, FIELD_VAL, SHIFTED_VAL, SIDE

SPLITS = ("train", "val")
OPTIONAL_SPLITS = (SHIFTED_VAL, FIELD_VAL)  # only in versions that bring them

# Rule name -> what it means, in the words the report uses.
RULES = {
    "missing-split": "the split folder is missing",
    "stray-file": "not part of the layout <split>/<digit>/<id>.png",
    "bad-label": "label folders must be named 0 to 9",
    "unreadable": "not a readable PNG image",
    "wrong-format": "must be a grayscale (mode L) PNG",
    "wrong-size": f"must be {SIDE}x{SIDE} pixels",
    "missing-class": "a class has no images in this split",
    "too-few": "a class has fewer images than params.yaml requires",
    "leakage": "the same image is in train and in an evaluation split",
}


@dataclass(frozen=True)
class Problem:
    """One broken rule: which, where, and what was found."""

    rule: str
    path: str
    detail: str = ""


@dataclass
class Report:
    """The outcome of a validation: problems found, and image counts per split and class."""

    data_dir: Path
    problems: list[Problem] = field(default_factory=list)
    counts: dict[str, Counter] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No rule is broken."""
        return not self.problems

    @property
    def rules_broken(self) -> set[str]:
        """The names of the rules broken at least once."""
        return {problem.rule for problem in self.problems}

    def add(self, rule: str, path: Path | str, detail: str = "") -> None:
        """Record one problem."""
        shown = path.relative_to(self.data_dir) if isinstance(path, Path) else path
        self.problems.append(Problem(rule, str(shown), detail))

    def summary(self, max_files: int = 10) -> str:
        """A human-readable report: one block per broken rule, listing the offending files."""
        if self.ok:
            sizes = ", ".join(f"{split} {sum(c.values())}" for split, c in self.counts.items())
            return f"{self.data_dir}: valid ({sizes} images)"
        by_rule: dict[str, list[Problem]] = defaultdict(list)
        for problem in self.problems:
            by_rule[problem.rule].append(problem)
        lines = [f"{self.data_dir}: {len(self.problems)} problem(s)"]
        for rule, problems in by_rule.items():
            lines.append(f"[{rule}] {RULES[rule]}: {len(problems)}")
            for problem in problems[:max_files]:
                detail = f" ({problem.detail})" if problem.detail else ""
                lines.append(f"  - {problem.path}{detail}")
            if len(problems) > max_files:
                lines.append(f"  ... and {len(problems) - max_files} more")
        return "\n".join(lines)


class DataValidationError(Exception):
    """Raised when a data folder breaks a rule; the message is the full report."""

    def __init__(self, report: Report):
        super().__init__(report.summary())
        self.report = report


def _check_image(path: Path, report: Report) -> str | None:
    """Check one file; return a hash of its pixels if it is a valid digit image."""
    try:
        with Image.open(path) as image:
            image.load()
            fmt, mode, size = image.format, image.mode, image.size
            pixels = image.tobytes()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        report.add("unreadable", path, str(error) or type(error).__name__)
        return None
    if fmt != "PNG" or mode != "L":
        report.add("wrong-format", path, f"{fmt} in mode {mode}")
        return None
    if size != (SIDE, SIDE):
        report.add("wrong-size", path, f"{size[0]}x{size[1]}")
        return None
    return hashlib.sha256(pixels).hexdigest()


def _check_split(split_dir: Path, report: Report) -> dict[str, Path]:
    """Check one split folder; return pixel hash -> path of its valid images."""
    counts: Counter = Counter()
    hashes: dict[str, Path] = {}
    for entry in sorted(split_dir.iterdir()):
        if not entry.is_dir():
            report.add("stray-file", entry)
        elif entry.name not in CLASSES:
            report.add("bad-label", entry, f"folder {entry.name!r}")
        else:
            for path in sorted(entry.iterdir()):
                if path.is_dir() or path.suffix != ".png" or path.name.startswith("."):
                    report.add("stray-file", path)
                elif digest := _check_image(path, report):
                    counts[entry.name] += 1
                    hashes[digest] = path
    report.counts[split_dir.name] = Counter({label: counts[label] for label in CLASSES})
    return hashes


def validate(data_dir: Path, rules: ValidationParams) -> Report:
    """Check every rule on `data_dir` (train/, val/, shifted_val/ and field_val/ if there);
    report all problems."""
    report = Report(data_dir)
    if not data_dir.is_dir():
        report.add("missing-split", str(data_dir), "the data folder does not exist")
        return report
    for entry in sorted(data_dir.iterdir()):
        if entry.name not in SPLITS + OPTIONAL_SPLITS:
            report.add("stray-file", entry)
    hashes = {}
    for split in SPLITS + OPTIONAL_SPLITS:
        if (data_dir / split).is_dir():
            hashes[split] = _check_split(data_dir / split, report)
        elif split in SPLITS:
            report.add("missing-split", split)
    minimum = {"train": rules.min_per_class_train, "val": rules.min_per_class_val}
    minimum[SHIFTED_VAL] = rules.min_per_class_val
    for split, counts in report.counts.items():
        if split == FIELD_VAL:  # people need not have drawn every digit: a minimum in all
            if counts.total() < rules.min_field_val:
                report.add("too-few", split, f"{counts.total()} < {rules.min_field_val}")
            continue
        for label, count in counts.items():
            if count == 0:
                report.add("missing-class", f"{split}/{label}", "no images")
            elif count < minimum[split]:
                report.add("too-few", f"{split}/{label}", f"{count} < {minimum[split]}")
    train = hashes.get("train", {})
    for split in ("val", *OPTIONAL_SPLITS):
        for digest in sorted(train.keys() & hashes.get(split, {}).keys()):
            report.add(
                "leakage",
                hashes[split][digest],
                f"same pixels as {train[digest].relative_to(data_dir)}",
            )
    return report


def check(data_dir: Path, rules: ValidationParams) -> Report:
    """Validate; raise DataValidationError on any problem, so nothing downstream runs on it."""
    report = validate(data_dir, rules)
    if not report.ok:
        raise DataValidationError(report)
    return report
