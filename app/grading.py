"""`python -m app.grading PATH...`: grade learners' lab notebooks against hidden cases.

The lab is recognised from the file name (`01_anything.ipynb` is lab 01); its hidden cases are
in tests/labs/lab_01.py (`EXERCISES`: exercise number -> snippets; an optional `HELPERS`: code
the snippets share, such as a throwaway experiment). With testbook, each notebook runs in a
kernel of its own: the cells tagged `setup` and `parameters`, the helpers, then, per exercise,
the cell tagged `exercise-N` (the learner's functions) and every snippet, which raises when the
answer is wrong. Prints one row per exercise and a total; given a folder, grades every notebook
in it into one table and writes it as CSV too (`--csv`, default: grades.csv in that folder).
Exit code 0 only when every exercise of every notebook passes.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import logging
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from testbook import testbook
from testbook.exceptions import TestbookRuntimeError

from app.config import REPO_ROOT
from app.log import setup_logging
from app.pipeline import KERNEL_CONFIG

log = logging.getLogger("app.grading")
CASES = REPO_ROOT / "tests" / "labs"


@dataclass(frozen=True)
class Score:
    """One exercise of one notebook: cases passed out of cases, and why the first failed."""

    notebook: str
    exercise: int
    passed: int
    cases: int
    message: str  # why the first failing case failed; empty when all pass

    @property
    def ok(self) -> bool:
        """Every case passed."""
        return self.passed == self.cases


class GradingError(ValueError):
    """A notebook that cannot be graded at all (unknown lab); the message says why."""


def lab_of(notebook: Path) -> str:
    """The lab a notebook is (`01_...` is lab 01); GradingError for any other name."""
    match = re.match(r"(\d\d)_", notebook.name)
    if not match or not (CASES / f"lab_{match[1]}.py").exists():
        raise GradingError(f"{notebook.name}: name it like its lab (01_..., 02_...) to grade it")
    return match[1]


def cases_module(lab: str):
    """tests/labs/lab_NN.py, loaded: `EXERCISES` and, when the snippets share code, `HELPERS`."""
    spec = importlib.util.spec_from_file_location(f"lab_{lab}", CASES / f"lab_{lab}.py")
    assert spec and spec.loader, f"no cases for lab {lab}"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def failure(error: TestbookRuntimeError) -> str:
    """One line a learner can act on: the exception and its message."""
    name = getattr(error, "eclass", None)
    name = getattr(name, "__name__", None) or str(name or "Error")
    return f"{name}: {error.evalue}".strip()[:300]


def grade(notebook: Path, timeout: float = 300) -> list[Score]:
    """One score per exercise of the notebook's lab."""
    cases = cases_module(lab_of(notebook))
    exercises = cases.EXERCISES
    scores = []
    with testbook(str(notebook), execute=False, timeout=timeout, config=KERNEL_CONFIG) as tb:
        try:
            for tag in ("setup", "parameters"):
                tb.execute_cell(tag)
        except TestbookRuntimeError as error:
            why = f"the {tag} cell failed: {failure(error)}"
            return [Score(notebook.name, n, 0, len(c), why) for n, c in exercises.items()]
        if helpers := getattr(cases, "HELPERS", ""):
            tb.inject(helpers, pop=True)  # the grader's own helpers, not the learner's code
        for number, snippets in exercises.items():
            passed, message = 0, ""
            try:
                tb.execute_cell(f"exercise-{number}")
                for snippet in snippets:
                    try:
                        tb.inject(snippet, pop=True)
                        passed += 1
                    except TestbookRuntimeError as error:
                        message = message or failure(error)
            except TestbookRuntimeError as error:
                message = f"the exercise cell failed: {failure(error)}"
            scores.append(Score(notebook.name, number, passed, len(snippets), message))
    return scores


def notebooks_in(paths: list[Path]) -> list[Path]:
    """The notebooks to grade: each path given, or the notebooks in a folder."""
    found = []
    for path in paths:
        found += sorted(path.glob("*.ipynb")) if path.is_dir() else [path]
    return found


def table(scores: list[Score]) -> str:
    """The scores as printed: one row per exercise, then the total."""
    rows = [f"{'notebook':32} {'exercise':>8} {'score':>7}  why not"]
    rows += [
        f"{s.notebook:32} {s.exercise:>8} {f'{s.passed}/{s.cases}':>7}  {s.message}" for s in scores
    ]
    passed, total = sum(s.passed for s in scores), sum(s.cases for s in scores)
    exercises = sum(s.ok for s in scores)
    rows.append(f"total: {exercises}/{len(scores)} exercises, {passed}/{total} cases")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """`python -m app.grading PATH...`; exit 0 only when everything passes."""
    parser = argparse.ArgumentParser(prog="python -m app.grading", description=__doc__)
    parser.add_argument("paths", nargs="+", type=Path, help="notebooks, or folders of them")
    parser.add_argument("--csv", type=Path, help="write the scores here as CSV too")
    args = parser.parse_args(argv)
    setup_logging()
    scores = []
    for notebook in notebooks_in(args.paths):
        try:
            scores += grade(notebook)
        except GradingError as error:
            log.error("error: %s", error)
            return 2
    if not scores:
        log.error("error: no notebook to grade in %s", " ".join(map(str, args.paths)))
        return 2
    sys.stdout.write(table(scores) + "\n")  # the table is the output; logs go to stderr
    target = args.csv or next((p / "grades.csv" for p in args.paths if p.is_dir()), None)
    if target:
        with target.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=[*asdict(scores[0]), "ok"])
            writer.writeheader()
            writer.writerows(asdict(s) | {"ok": s.ok} for s in scores)
        log.info("wrote %s", target)
    return 0 if all(s.ok for s in scores) else 1


if __name__ == "__main__":
    sys.exit(main())
