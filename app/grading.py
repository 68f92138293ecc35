"""`python -m app.grading PATH...`: grade learners' lab notebooks against hidden cases.

The lab is recognised from the file name (`01_anything.ipynb` is lab 01); its hidden cases are
in tests/labs/lab_01.py, real functions registered on its `cases` (a `Cases`): per exercise, the
cases in order, and the helpers they share, such as a throwaway experiment. With testbook, each
notebook runs in a kernel of its own: the cells tagged `setup` and `parameters`, the helpers'
source, then, per exercise, the cell tagged `exercise-N` (the learner's functions) and every
case's source with a call, which raises when the answer is wrong. Prints one row per exercise
and a total; given a folder, grades every notebook in it into one table and writes it as CSV too
(`--csv`, default: grades.csv in that folder). Exit code 0 only when every exercise of every
notebook passes.
"""

from __future__ import annotations

import argparse
import ast
import csv
import importlib.util
import inspect
import logging
import re
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

from testbook import testbook
from testbook.exceptions import TestbookRuntimeError

from app.config import REPO_ROOT
from app.log import setup_logging
from app.pipeline import KERNEL_CONFIG

log = logging.getLogger("app.grading")
CASES = REPO_ROOT / "tests" / "labs"
Function = TypeVar("Function", bound=Callable[..., object])


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
    """A notebook that cannot be graded at all (unknown lab, unusable cases); says why."""


def lab_of(notebook: Path) -> str:
    """The lab a notebook is (`01_...` is lab 01); GradingError for any other name."""
    match = re.match(r"(\d\d)_", notebook.name)
    if not match or not (CASES / f"lab_{match[1]}.py").exists():
        raise GradingError(f"{notebook.name}: name it like its lab (01_..., 02_...) to grade it")
    return match[1]


class Cases:
    """The hidden cases of one lab, as real functions sent to the learner's kernel as source.

    `@cases.exercise(n)` registers the next case of exercise n: a function of no argument that
    raises when the answer is wrong. `@cases.helper` registers a function the cases share, sent
    once before the exercises. Both are defined in the learner's namespace, so they import what
    they use inside their own body, and their names start with `_`, clear of the lab's names and
    of the learner's functions; a helper's with the lab's too (`_lab05_requests`), since it stays
    there while the learner's cells run (tests/test_labs.py checks both).
    """

    def __init__(self) -> None:
        self.exercises: dict[int, list[Callable[[], object]]] = {}
        self.helpers: list[Callable[..., object]] = []

    def exercise(self, number: int) -> Callable[[Function], Function]:
        """Register the decorated function as the next case of exercise `number`."""

        def register(case: Function) -> Function:
            sendable(case)  # before setdefault: a refused case leaves no empty exercise behind
            self.exercises.setdefault(number, []).append(case)
            return case

        return register

    def helper(self, function: Function) -> Function:
        """Register the decorated function as a helper every case of the lab may call."""
        self.helpers.append(sendable(function))
        return function


def sendable(function: Function) -> Function:
    """`function` if the grader can send it to a kernel as source; GradingError says why not."""
    name = function.__qualname__
    if not function.__name__.startswith("_"):
        raise GradingError(
            f"{name}: a case or helper is defined in the learner's namespace, so its name "
            "starts with `_`, clear of the lab's names and of the learner's functions"
        )
    if name != function.__name__:  # nested: its source would need what surrounds it
        raise GradingError(f"{name}: define cases and helpers at the top level of the lab file")
    return function


def definition(function: Callable[..., object]) -> str:
    """The source of a top-level function from its `def` on: its decorators (the registry's) go."""
    source = inspect.getsource(function)
    start = ast.parse(source).body[0].lineno  # the `def` line, below any decorator
    # Sent as written: re-indenting would change the triple-quoted strings of a case.
    return "".join(source.splitlines(keepends=True)[start - 1 :])


def case_source(case: Callable[[], object]) -> str:
    """What the kernel runs for one case: its definition, a call, then its name deleted."""
    name = case.__name__
    return f"{definition(case)}\ntry:\n    {name}()\nfinally:\n    del {name}\n"


def helpers_source(cases: Cases) -> str:
    """What the kernel runs once, before the exercises: every helper's definition."""
    return "\n\n".join(definition(helper) for helper in cases.helpers)


def lab_cases(lab: str) -> Cases:
    """The `cases` of tests/labs/lab_NN.py, the file loaded afresh."""
    spec = importlib.util.spec_from_file_location(f"lab_{lab}", CASES / f"lab_{lab}.py")
    assert spec and spec.loader, f"no cases for lab {lab}"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cases = getattr(module, "cases", None)
    if not isinstance(cases, Cases):
        raise GradingError(f"tests/labs/lab_{lab}.py has no `cases = Cases()` to grade with")
    return cases


def failure(error: TestbookRuntimeError) -> str:
    """One line a learner can act on: the exception and its message."""
    name = getattr(error, "eclass", None)
    name = getattr(name, "__name__", None) or str(name or "Error")
    return f"{name}: {error.evalue}".strip()[:300]


def grade(notebook: Path, timeout: float = 300) -> list[Score]:
    """One score per exercise of the notebook's lab."""
    cases = lab_cases(lab_of(notebook))
    exercises = {n: [case_source(c) for c in cs] for n, cs in sorted(cases.exercises.items())}
    scores = []
    with testbook(str(notebook), execute=False, timeout=timeout, config=KERNEL_CONFIG) as tb:
        try:
            for tag in ("setup", "parameters"):
                tb.execute_cell(tag)
        except TestbookRuntimeError as error:
            why = f"the {tag} cell failed: {failure(error)}"
            return [Score(notebook.name, n, 0, len(c), why) for n, c in exercises.items()]
        if cases.helpers:
            tb.inject(helpers_source(cases), pop=True)  # the grader's own, not the learner's
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
    # `python -m` runs this file as __main__; the lab files import Cases from app.grading, so
    # grade with that module, whose Cases and GradingError are theirs.
    from app.grading import main as grading_main

    sys.exit(grading_main())
