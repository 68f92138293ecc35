"""`python -m app.pipeline`: the main job. Get the data, then run every notebook in order."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import nbformat
import papermill
from nbformat import NotebookNode
from papermill.exceptions import PapermillExecutionError
from traitlets.config import Config

from app import sandbox, stack
from app.config import Settings, get_settings, load_params
from app.data.dvc import DataVersionMismatch, DvcError, dvc, ensure_data, is_clean
from app.data.validate import DataValidationError, check
from app.log import setup_logging

log = logging.getLogger("app.pipeline")


# What a notebook may print on stderr because nothing can switch it off. Keep it short.
ALLOWED_STDERR = (
    # Printed once per machine, by the first process that imports matplotlib.
    "Matplotlib is building the font cache",
)


# Kernels talk over CurveZMQ-encrypted sockets, their keys provisioned by jupyter_client where
# the kernelspec supports it (ipykernel's does). On plain TCP every kernel warns at start that
# its traffic is readable by anyone on the machine: true on a shared machine, and alarming.
KERNEL_CONFIG = Config({"KernelManager": {"transport_encryption": "auto"}})


class NotebookFailed(RuntimeError):
    """A notebook raised; the message names the notebook, the cell and the error."""


def stderr_outputs(notebook: NotebookNode) -> list[tuple[int, str]]:
    """(cell index, text) of what an executed notebook wrote on stderr (warnings land there).

    A learner reads every output: chatter or a warning they did not cause is a bug.
    """
    return [
        (index, output.text)
        for index, cell in enumerate(notebook.cells)
        for output in cell.get("outputs", [])
        if output.output_type == "stream"
        and output.name == "stderr"
        and not output.text.strip().startswith(ALLOWED_STDERR)
    ]


def run_notebook(notebook: Path, settings: Settings, parameters: dict | None = None) -> Path:
    """Execute one notebook with papermill into runs/, from its own folder; return the copy.

    In a terminal, papermill's progress bar shows the cell it is at and the time spent.
    """
    settings.runs_dir.mkdir(exist_ok=True)
    executed = settings.runs_dir / notebook.name
    try:
        done = papermill.execute_notebook(
            notebook,
            executed,
            parameters=parameters or {},
            kernel_name=settings.kernel_name,
            cwd=notebook.parent,
            progress_bar=sys.stderr.isatty(),
            config=KERNEL_CONFIG,
        )
    except PapermillExecutionError as error:
        raise NotebookFailed(
            f"{notebook.name} failed in cell {error.cell_index} (execution count "
            f"{error.exec_count}): {error.ename}: {error.evalue}\n"
            f"See the executed copy: {executed}"
        ) from None
    for index, text in stderr_outputs(done):
        log.warning("%s: cell %d wrote to stderr: %s", notebook.name, index, text.strip()[:300])
    return executed


def run_notebooks(
    settings: Settings, only: list[str] | None = None, folder: Path | None = None
) -> list[Path]:
    """Run a folder's notebooks (`notebooks/`) in name order, stopping at the first failure;
    log a table of every notebook, its time and its result at the end, failure or not."""
    notebooks = sorted((folder or settings.notebooks_dir).glob("*.ipynb"))
    if only:
        notebooks = [nb for nb in notebooks if any(key in nb.name for key in only)]
    executed, results = [], {nb.name: ("", "not run") for nb in notebooks}
    try:
        for number, notebook in enumerate(notebooks, 1):
            cells = len(nbformat.read(notebook, as_version=4).cells)
            log.info("[%d/%d] %s (%d cells)", number, len(notebooks), notebook.name, cells)
            start = time.monotonic()
            results[notebook.name] = ("", "failed")
            executed.append(run_notebook(notebook, settings))
            results[notebook.name] = (f"{time.monotonic() - start:.0f} s", "ok")
    finally:
        log.info("%-40s %8s  %s", "notebook", "time", "result")
        for name, (seconds, result) in results.items():
            log.info("%-40s %8s  %s", name, seconds, result)
    return executed


def run_pipeline(
    settings: Settings, only: list[str] | None = None, folder: Path | None = None
) -> None:
    """Data (pulled or rebuilt, then validated), the stack, then the notebooks.

    The stack is left running for the learner; DVC must be clean at the end.
    """
    params = load_params(settings.params_path)
    log.info("data: %s", ensure_data(settings, params))
    log.info(check(settings.data_dir, params.validation).summary())
    stack.up(settings)
    sandbox.undo_all(settings)  # what an interrupted notebook 06 left behind, given back (logged)
    executed = run_notebooks(settings, only, folder)
    if not is_clean(settings.root):
        raise DvcError(
            "the notebooks left data/ different from data.dvc:\n"
            + dvc("status", repo=settings.root)
        )
    log.info("done: %d notebook(s) ran; executed copies in %s", len(executed), settings.runs_dir)
    log.info("The stack keeps running (stop it with `make stack-down`). Open:")
    for name, state, url in stack.status(settings):
        log.info("  %-12s %-13s %s", name, state, url)


def main(argv: list[str] | None = None) -> int:
    """`python -m app.pipeline [NN ...]`: the stage notebooks in order, or the ones named."""
    parser = argparse.ArgumentParser(prog="python -m app.pipeline", description=__doc__)
    parser.add_argument("only", nargs="*", help="run only notebooks whose name contains these")
    parser.add_argument(
        "--folder", type=Path, help="run this folder's notebooks instead (solutions/: the labs)"
    )
    args = parser.parse_args(argv)
    setup_logging()
    try:
        run_pipeline(get_settings(), args.only, args.folder)
    except (
        NotebookFailed,
        DataValidationError,
        DataVersionMismatch,
        DvcError,
        stack.StackError,
    ) as error:
        log.error("pipeline stopped: %s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
