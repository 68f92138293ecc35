"""nbmake's notebook run, failing a notebook that writes to stderr (installed by ../conftest.py).

A learner reads every output, so a warning or a library's chatter they did not cause is a bug.
The check is the pipeline's own (`app.pipeline.stderr_outputs`): papermill and nbmake agree.
"""

from __future__ import annotations

import nbmake.pytest_items
from nbmake.nb_result import NotebookError, NotebookResult
from nbmake.nb_run import NotebookRun

from app.pipeline import stderr_outputs


class QuietNotebookRun(NotebookRun):
    """nbmake's run, failing on the first cell with output on stderr."""

    def execute(self) -> NotebookResult:
        result = super().execute()
        noise = stderr_outputs(result.nb)
        if result.error is None and noise:
            index, text = noise[0]
            summary = f"cell {index} wrote to stderr: {text.strip().splitlines()[0][:200]}"
            result.error = NotebookError(summary, f"{summary}\n\n{text}", index)
        return result


def install() -> None:
    """Make nbmake's notebook items use QuietNotebookRun (the name NotebookItem.runtest calls)."""
    nbmake.pytest_items.NotebookRun = QuietNotebookRun
