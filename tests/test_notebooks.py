"""Committed notebooks: no outputs, and the opening every notebook of the workbook shares."""

from __future__ import annotations

import nbformat
import pytest

from app.config import REPO_ROOT

NOTEBOOKS = sorted(
    path
    for folder in ("notebooks", "labs", "solutions")
    for path in (REPO_ROOT / folder).glob("*.ipynb")
)
IDS = [path.relative_to(REPO_ROOT).as_posix() for path in NOTEBOOKS]


def test_there_are_notebooks():
    assert (REPO_ROOT / "notebooks" / "01_data_versioning.ipynb") in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    dirty = [
        index
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count)
    ]
    assert not dirty, f"cells {dirty} carry outputs: clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_opening_and_shape(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    first = notebook.cells[0].source.splitlines()
    assert first[0].startswith("# "), "the first cell opens with an H1 title"
    assert any(line.startswith("> ") for line in first), "a one-line '>' subtitle follows"
    assert "What you will learn" in notebook.cells[0].source
    tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters' (papermill)"
    kinds = [cell.cell_type for cell in notebook.cells]
    assert kinds.count("markdown") >= kinds.count("code")
    assert notebook.metadata.kernelspec.name == "python3"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.parent.name == "notebooks"], ids=str)
def test_every_section_ends_with_an_assertion(path):
    """A section is an H2 heading; the last code cell before the next H2 must assert."""
    notebook = nbformat.read(path, as_version=4)
    sections: list[list] = []
    for cell in notebook.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("## "):
            sections.append([cell.source.splitlines()[0]])
        elif sections and cell.cell_type == "code":
            sections[-1].append(cell.source)
    checked = [s for s in sections if not s[0].startswith(("## Summary", "## Exercises"))]
    assert checked, "the notebook has sections"
    for heading, *code in checked:
        assert code and "assert " in code[-1], f"{heading!r} does not end with an assertion"
