"""The notebook runner: order, executed copies in runs/, and a clear report on failure."""

from __future__ import annotations

import logging

import nbformat
import pytest

from app.config import Settings
from app.pipeline import NotebookFailed, run_notebooks, stderr_outputs
from tests.quiet_notebooks import QuietNotebookRun


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


def test_ends_with_a_table_of_every_notebook_its_time_and_result(project, caplog):
    caplog.set_level(logging.INFO, logger="app.pipeline")
    folder = project.notebooks_dir
    write_notebook(folder / "01_ok.ipynb", "x = 1")
    write_notebook(folder / "02_bad.ipynb", "raise ValueError('no')")
    write_notebook(folder / "03_never.ipynb", "x = 3")
    with pytest.raises(NotebookFailed):
        run_notebooks(project)
    assert "[2/3] 02_bad.ipynb (1 cells)" in caplog.text
    rows = {line.split()[0]: line.split()[1:] for line in caplog.messages if ".ipynb " in line}
    assert rows["01_ok.ipynb"][-1] == "ok" and rows["01_ok.ipynb"][1] == "s"
    assert rows["02_bad.ipynb"] == ["failed"] and rows["03_never.ipynb"] == ["not", "run"]


NOISY = "import sys\nsys.stderr.write('chatter a learner did not cause\\n')"
ALLOWED = "import sys\nsys.stderr.write('Matplotlib is building the font cache; wait\\n')"


def test_stderr_output_is_found_and_named(project, caplog):
    write_notebook(project.notebooks_dir / "01_noisy.ipynb", "x = 1", NOISY, ALLOWED)
    (executed,) = run_notebooks(project)
    noise = stderr_outputs(nbformat.read(executed, as_version=4))
    assert noise == [(1, "chatter a learner did not cause\n")]
    assert "01_noisy.ipynb: cell 1 wrote to stderr: chatter" in caplog.text


def test_nbmake_fails_a_notebook_that_writes_to_stderr(project):
    quiet, noisy = project.notebooks_dir / "quiet.ipynb", project.notebooks_dir / "noisy.ipynb"
    write_notebook(quiet, "print('stdout is fine')", ALLOWED)
    write_notebook(noisy, "x = 1", NOISY)
    assert QuietNotebookRun(quiet, 120).execute().error is None
    error = QuietNotebookRun(noisy, 120).execute().error
    assert error.failing_cell_index == 1
    assert error.summary == "cell 1 wrote to stderr: chatter a learner did not cause"
