"""The notebook runner: order, executed copies in runs/, and a clear report on failure."""

from __future__ import annotations

import nbformat
import pytest

from app.config import Settings
from app.pipeline import NotebookFailed, run_notebooks


def write_notebook(path, *sources):
    cells = [nbformat.v4.new_code_cell(source) for source in sources]
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(notebook, path)


@pytest.fixture
def project(tmp_path):
    (tmp_path / "notebooks").mkdir()
    return Settings(root=tmp_path, _env_file=None)


def test_runs_in_order_and_keeps_executed_copies(project):
    folder = project.notebooks_dir
    write_notebook(folder / "02_second.ipynb", "open('order.txt', 'a').write('2')")
    write_notebook(folder / "01_first.ipynb", "open('order.txt', 'a').write('1')")
    executed = run_notebooks(project)
    assert [path.name for path in executed] == ["01_first.ipynb", "02_second.ipynb"]
    assert (folder / "order.txt").read_text() == "12"  # each ran from its own folder
    assert nbformat.read(executed[0], as_version=4).cells[0].execution_count == 1


def test_stops_at_the_first_failure_and_names_notebook_and_cell(project):
    folder = project.notebooks_dir
    write_notebook(folder / "01_ok.ipynb", "x = 1")
    write_notebook(folder / "02_bad.ipynb", "y = 2", "assert y == 3, 'y is not three'")
    write_notebook(folder / "03_never.ipynb", "open('ran.txt', 'w')")
    with pytest.raises(NotebookFailed, match=r"02_bad.ipynb failed in cell 1 .*y is not three"):
        run_notebooks(project)
    assert (project.runs_dir / "02_bad.ipynb").exists()
    assert not (project.runs_dir / "03_never.ipynb").exists()
    assert not (folder / "ran.txt").exists()
