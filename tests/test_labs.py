"""Labs: the generator (solutions/ -> labs/), labs/ kept in sync, and the grader.

Every solution also runs top to bottom under nbmake (pyproject's testpaths include solutions/).
"""

from __future__ import annotations

import ast
import builtins
import csv
import dis
import inspect
import shutil
import subprocess
import sys
import uuid

import nbformat
import pytest

from app import grading, labs
from app.config import REPO_ROOT

SOLUTIONS = sorted((REPO_ROOT / "solutions").glob("*.ipynb"))
LABS = sorted(path.stem.removeprefix("lab_") for path in grading.CASES.glob("lab_*.py"))
GLOBAL_OPS = {"LOAD_GLOBAL", "STORE_GLOBAL", "DELETE_GLOBAL", "LOAD_NAME"}


def solution_cell(source: str, tags: list[str] | None = None) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(source, metadata={"tags": tags or []})


def notebook(*cells) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=list(cells))


def test_a_solution_becomes_a_stub_raising_the_hint():
    solution = notebook(
        nbformat.v4.new_markdown_cell("## Exercise 1 · ⭐ Count\n\nCount.\n\n**Hint:** use len()."),
        solution_cell(
            'def count(items):\n    """How many."""\n    ### BEGIN SOLUTION\n'
            "    n = len(items)\n    return n\n    ### END SOLUTION\n",
            ["exercise-1"],
        ),
        solution_cell("assert count([1]) == 1", ["hidden"]),
    )
    solution.cells[1].outputs = [nbformat.v4.new_output("stream", text="x")]
    lab = labs.student_version(solution)
    assert len(lab.cells) == 2  # the hidden cell is gone
    assert lab.cells[1].source == (
        'def count(items):\n    """How many."""\n    raise NotImplementedError("use len().")'
    )
    assert lab.cells[1].outputs == [] and solution.cells[1].outputs  # the solution is untouched
    namespace: dict = {}
    exec(lab.cells[1].source, namespace)
    with pytest.raises(NotImplementedError, match=r"use len\(\)"):
        namespace["count"]([1])


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("### BEGIN SOLUTION\nx = 1\n", "without ### END"),
        ("x = 1\n### END SOLUTION\n", "without ### BEGIN"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "nested"),
    ],
)
def test_broken_markers_are_named(source, says):
    hinted = nbformat.v4.new_markdown_cell("**Hint:** something")
    with pytest.raises(labs.LabError, match=says):
        labs.student_version(notebook(hinted, solution_cell(source)), "lab.ipynb")


def test_a_solution_without_a_hint_is_refused():
    with pytest.raises(labs.LabError, match=r"lab.ipynb, cell 0: no \*\*Hint:\*\* above"):
        labs.student_version(
            notebook(solution_cell("### BEGIN SOLUTION\n### END SOLUTION")), "lab.ipynb"
        )


def test_labs_are_what_make_labs_writes():
    assert SOLUTIONS, "no solutions to make labs from"
    assert labs.stale_labs() == [], "labs/ is stale: run `make labs`"


def test_every_lab_has_hidden_cases_for_each_exercise():
    assert [grading.lab_of(path) for path in SOLUTIONS] == LABS
    for path in SOLUTIONS:
        tags = {t for c in nbformat.read(path, 4).cells for t in c.metadata.get("tags", [])}
        exercises = {int(t.split("-")[1]) for t in tags if t.startswith("exercise-")}
        cases = grading.lab_cases(grading.lab_of(path)).exercises
        assert set(cases) == exercises and all(cases.values()), path.name


def global_names(code) -> set[str]:
    """The global names a function's code reads or writes, its nested functions' included.

    From the bytecode: `inspect.getclosurevars` sees neither nested functions nor the difference
    between a global and an attribute of the same name.
    """
    names = {i.argval for i in dis.get_instructions(code) if i.opname in GLOBAL_OPS}
    for constant in code.co_consts:
        if inspect.iscode(constant):
            names |= global_names(constant)
    return names


def kernel_names(lab: str) -> set[str]:
    """The names a lab's cases find in the learner's kernel: its `if TYPE_CHECKING:` stubs."""
    tree = ast.parse((grading.CASES / f"lab_{lab}.py").read_text())
    block = next(
        n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING"
    )
    return {n.target.id for n in block.body if isinstance(n, ast.AnnAssign)}


@pytest.mark.parametrize("lab", LABS)
def test_hidden_cases_use_only_their_helpers_and_the_kernel_s_names(lab):
    """What the grader sends is all a case has in the kernel: a module-level import of the lab
    file, or a name only imported for type checking, would be missing there."""
    cases = grading.lab_cases(lab)
    helpers = {helper.__name__ for helper in cases.helpers}
    mine = {name for name in helpers if not name.startswith(f"_lab{lab}_")}
    assert not mine, f"lab {lab}: helpers stay in the kernel; name them _lab{lab}_...: {mine}"
    allowed = helpers | kernel_names(lab) | set(dir(builtins))
    for function in [*cases.helpers, *(c for cs in cases.exercises.values() for c in cs)]:
        used = global_names(function.__code__)
        module_level = {name for name in used if name in function.__globals__} - helpers
        assert not module_level, f"lab {lab}, {function.__name__} uses {module_level} of the file"
        unknown = used - allowed
        assert not unknown, f"lab {lab}, {function.__name__} uses {unknown}: import them inside"


def as_the_kernel_compiles(source: str, name: str):
    """Compiled without this file's `from __future__ import annotations`, as a kernel does."""
    return compile(source, name, "exec", dont_inherit=True)


@pytest.mark.parametrize("lab", LABS)
def test_what_the_grader_sends_defines_each_case_in_an_empty_namespace(lab):
    """Helpers' and cases' definitions run with nothing around them (annotations and defaults
    are evaluated there), and each case's source is sent as written, with no decorator."""
    cases = grading.lab_cases(lab)
    namespace: dict = {}
    exec(as_the_kernel_compiles(grading.helpers_source(cases), f"lab_{lab} helpers"), namespace)
    assert {h.__name__ for h in cases.helpers} <= namespace.keys()
    for case in (c for cs in cases.exercises.values() for c in cs):
        sent = grading.case_source(case)
        definition = sent[: sent.rindex("\ntry:\n")]
        assert sent.startswith(f"def {case.__name__}():") and definition in inspect.getsource(case)
        exec(as_the_kernel_compiles(definition, f"lab_{lab} {case.__name__}"), dict(namespace))
        as_the_kernel_compiles(sent, f"lab_{lab} {case.__name__}")


demo = grading.Cases()


@demo.exercise(1)
def _demo_case():
    """A case that keeps its text as written, and fails."""
    text = """
  indented as it was
"""
    raise AssertionError(text)


def test_a_case_is_sent_as_written_then_called_then_deleted():
    sent = grading.case_source(_demo_case)
    assert "@demo" not in sent and sent.startswith("def _demo_case():\n")
    assert '    text = """\n  indented as it was\n"""\n' in sent
    namespace: dict = {"_mine": 1}
    with pytest.raises(AssertionError, match="indented as it was"):
        exec(sent, namespace)
    assert "_demo_case" not in namespace and namespace["_mine"] == 1


def test_the_registry_refuses_what_could_replace_a_learner_s_name():
    registry = grading.Cases()

    def predict():
        pass

    def _nested():
        pass

    with pytest.raises(grading.GradingError, match="starts with `_`"):
        registry.helper(predict)
    with pytest.raises(grading.GradingError, match="starts with `_`"):
        registry.exercise(1)(predict)
    with pytest.raises(grading.GradingError, match="at the top level"):
        registry.exercise(1)(_nested)
    assert registry.helpers == [] and registry.exercises == {}


@pytest.mark.integration
@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.name)
def test_the_solution_scores_full_marks_and_the_untouched_lab_zero(solution):
    full = grading.grade(solution)
    assert full and all(score.ok for score in full), grading.table(full)
    lab = grading.grade(REPO_ROOT / "labs" / solution.name)
    assert not any(score.passed for score in lab), grading.table(lab)
    hint = labs.HINT.search(
        next(c.source for c in nbformat.read(solution, 4).cells if labs.HINT.search(c.source))
    )[1]
    assert lab[0].message.startswith("NotImplementedError") and hint in lab[0].message, lab[0]


@pytest.mark.integration
def test_a_folder_of_submissions_is_graded_into_one_table_and_a_csv(tmp_path):
    first = SOLUTIONS[0]
    shutil.copy(first, tmp_path / first.name)  # a learner who solved it
    shutil.copy(REPO_ROOT / "labs" / first.name, tmp_path / f"{first.stem[:3]}someone.ipynb")
    done = subprocess.run(
        [sys.executable, "-m", "app.grading", str(tmp_path)], capture_output=True, text=True
    )
    assert done.returncode == 1, done.stdout + done.stderr  # one of the two is not done
    assert "total:" in done.stdout and first.name in done.stdout
    with (tmp_path / "grades.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    by_notebook = {row["notebook"] for row in rows}
    assert by_notebook == {first.name, f"{first.stem[:3]}someone.ipynb"}


def test_an_unknown_lab_is_named(tmp_path):
    stray = tmp_path / "homework.ipynb"
    nbformat.write(notebook(), stray)
    done = subprocess.run(
        [sys.executable, "-m", "app.grading", str(stray)], capture_output=True, text=True
    )
    assert done.returncode == 2 and "name it like its lab" in done.stderr


def test_the_command_grades_with_the_cases_of_the_lab(tmp_path):
    """`python -m app.grading` loads a lab's cases (no server: the setup cell fails at once)."""
    broken = notebook(
        solution_cell('raise RuntimeError("no setup here")', ["setup"]),
        solution_cell("", ["parameters"]),
    )
    nbformat.write(broken, tmp_path / "08_broken.ipynb")
    done = subprocess.run(
        [sys.executable, "-m", "app.grading", str(tmp_path / "08_broken.ipynb")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    cases = grading.lab_cases("08").exercises
    total = f"total: 0/{len(cases)} exercises, 0/{sum(map(len, cases.values()))} cases"
    assert total in done.stdout
    assert "the setup cell failed: RuntimeError: no setup here" in done.stdout


def test_a_learner_s_copies_are_made_once_and_never_overwritten(tmp_path):
    source, mine = tmp_path / "labs", tmp_path / "my-labs"
    source.mkdir()
    for name in ("01_a.ipynb", "02_b.ipynb"):
        (source / name).write_text(f"lab {name}")
    assert [p.name for p in labs.copy_for_learner(source, mine)] == ["01_a.ipynb", "02_b.ipynb"]
    (mine / "01_a.ipynb").write_text("my answers")
    (source / "03_c.ipynb").write_text("a new lab")
    (source / "01_a.ipynb").write_text("lab 01, regenerated")

    assert [p.name for p in labs.copy_for_learner(source, mine)] == ["03_c.ipynb"]
    assert (mine / "01_a.ipynb").read_text() == "my answers"
    assert (mine / "03_c.ipynb").read_text() == "a new lab"


def test_my_labs_are_ignored_by_git_and_by_the_linter():
    """A learner's work in my-labs/ never shows as a change, nor fails `make lint`."""
    created = not labs.MY_LABS.exists()
    probe = labs.MY_LABS / f"zz_probe_{uuid.uuid4().hex[:8]}.py"
    labs.MY_LABS.mkdir(exist_ok=True)
    probe.write_text("import os\nx=1\n")  # two lint errors and unformatted
    try:
        ignored = subprocess.run(["git", "check-ignore", "-q", str(probe)], cwd=REPO_ROOT)
        linted = subprocess.run(
            [sys.executable, "-m", "ruff", "check", "--show-files", "."],
            cwd=REPO_ROOT, capture_output=True, text=True,
        )  # fmt: skip
    finally:
        probe.unlink()
        if created:
            labs.MY_LABS.rmdir()
    assert ignored.returncode == 0
    assert "app/labs.py" in linted.stdout and probe.name not in linted.stdout
