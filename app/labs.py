"""`python -m app.labs [--check | --mine]`: write the student labs (labs/) from the solutions
(solutions/), or give a learner copies of their own (my-labs/).

What `make labs` runs. In a solution notebook:
- the lines between `### BEGIN SOLUTION` and `### END SOLUTION` (markers included) become
  `raise NotImplementedError("<hint>")` at the same indentation, the hint being the `**Hint:**`
  line of the exercise's text above;
- cells tagged `hidden` are left out;
- outputs and execution counts are cleared.
`--check` writes nothing and fails when labs/ is not exactly what it would write.
`--mine` copies each lab to my-labs/ (git-ignored) unless a copy is there already: the learner's
work lives there, `make lab` opens it and `make grade` grades it, and nothing ever overwrites it.

nbformat does it: nbgrader's preprocessors do the same, but nbgrader would bring a database, a
Jupyter server extension and a few dozen packages for these few lines.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import re
import sys
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from app.config import REPO_ROOT
from app.log import setup_logging

log = logging.getLogger("app.labs")
SOLUTIONS, LABS = REPO_ROOT / "solutions", REPO_ROOT / "labs"
MY_LABS = REPO_ROOT / "my-labs"  # the learner's copies: git-ignored, never overwritten
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
HINT = re.compile(r"^\*\*Hint:\*\*\s*(.+)$", re.MULTILINE)


class LabError(ValueError):
    """A solution notebook the generator cannot turn into a lab; the message says where."""


def stub(source: str, hint: str | None, where: str) -> str:
    """A code cell's source with each solution replaced by a NotImplementedError with the hint."""
    lines, inside = [], False
    for line in source.splitlines():
        marker = line.strip()
        if marker == BEGIN:
            if inside or hint is None:
                raise LabError(f"{where}: {'nested ' + BEGIN if inside else 'no **Hint:** above'}")
            indent = line[: len(line) - len(line.lstrip())]
            message = json.dumps(hint, ensure_ascii=False)  # a string literal ruff leaves as is
            lines.append(f"{indent}raise NotImplementedError({message})")
            inside = True
        elif marker == END:
            if not inside:
                raise LabError(f"{where}: {END} without {BEGIN}")
            inside = False
        elif not inside:
            lines.append(line)
    if inside:
        raise LabError(f"{where}: {BEGIN} without {END}")
    return "\n".join(lines)


def student_version(solution: NotebookNode, name: str = "notebook") -> NotebookNode:
    """The lab a learner gets from a solution notebook."""
    lab = copy.deepcopy(solution)
    cells, hint = [], None
    for index, cell in enumerate(lab.cells):
        if "hidden" in cell.metadata.get("tags", []):
            continue
        if cell.cell_type == "markdown" and (found := HINT.search(cell.source)):
            hint = found[1].strip()
        if cell.cell_type == "code":
            cell.source = stub(cell.source, hint, f"{name}, cell {index}")
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
    lab.cells = cells
    return lab


def expected_labs() -> dict[Path, str]:
    """Every lab file as `make labs` writes it, by path."""
    return {
        LABS / path.name: nbformat.writes(student_version(nbformat.read(path, 4), path.name)) + "\n"
        for path in sorted(SOLUTIONS.glob("*.ipynb"))
    }


def stale_labs() -> list[str]:
    """What differs between labs/ and what `make labs` would write (empty: in sync)."""
    expected = expected_labs()
    present = set(LABS.glob("*.ipynb"))
    problems = [f"{p.name}: missing" for p in expected if p not in present]
    problems += [f"{p.name}: no solution" for p in sorted(present - set(expected))]
    problems += [
        f"{p.name}: out of date" for p in expected if p in present and p.read_text() != expected[p]
    ]
    return problems


def copy_for_learner(labs: Path, mine: Path) -> list[Path]:
    """Copy every lab of `labs` into `mine` that is not there yet; return the new copies.
    An existing copy is the learner's work: it is never overwritten."""
    mine.mkdir(exist_ok=True)
    copied = []
    for lab in sorted(labs.glob("*.ipynb")):
        if not (mine / lab.name).exists():
            (mine / lab.name).write_bytes(lab.read_bytes())
            copied.append(mine / lab.name)
    return copied


def main(argv: list[str] | None = None) -> int:
    """`python -m app.labs [--mine]`: write labs/ from solutions/, or copy them to my-labs/."""
    parser = argparse.ArgumentParser(prog="python -m app.labs", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if labs/ is stale")
    parser.add_argument("--mine", action="store_true", help="copy labs/ to my-labs/ (no overwrite)")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        if args.mine:
            copied = copy_for_learner(LABS, MY_LABS)
            log.info("my-labs/: %d new lab(s) copied from labs/, your work kept", len(copied))
            return 0
        if args.check:
            problems = stale_labs()
            for problem in problems:
                log.error("labs/%s (run `make labs`)", problem)
            return 1 if problems else 0
        LABS.mkdir(exist_ok=True)
        for stale in set(LABS.glob("*.ipynb")) - set(expected_labs()):
            stale.unlink()
        for path, text in expected_labs().items():
            path.write_text(text)
            log.info("wrote %s", path.relative_to(REPO_ROOT))
    except LabError as error:
        log.error("error: %s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
