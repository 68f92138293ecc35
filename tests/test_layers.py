"""Imports follow the lifecycle: data -> training -> registry -> serving, monitoring ->
retraining, with the tools (stack, pipeline, ...) on top and imported by no stage."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from app.config import REPO_ROOT

APP = REPO_ROOT / "app"
TOOLS = {"stack", "pipeline", "compose", "doctor", "labs", "grading", "sandbox", "processes"}


def imported_by(path) -> set[str]:
    """The app.* modules a file imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("app.")}


def stage_of(path) -> str:
    return path.relative_to(APP).parts[0].removesuffix(".py")


def test_only_the_api_imports_serving_and_no_stage_imports_a_tool():
    wrong = []
    for path in APP.rglob("*.py"):
        stage = stage_of(path)
        for module in imported_by(path):
            target = module.split(".")[1]
            if target == "serving" and stage != "serving":
                wrong.append(f"{path.relative_to(REPO_ROOT)} imports {module}")
            if target in TOOLS and stage not in TOOLS:
                wrong.append(f"{path.relative_to(REPO_ROOT)} imports the tool {module}")
    assert not wrong, wrong


@pytest.mark.parametrize(
    ("module", "must_not_load"),
    [
        # Serving a baseline needs neither torch nor the trainer nor scikit-learn's datasets.
        ("app.serving.app", ["torch", "skops", "sklearn", "app.training.fit"]),
        ("app.registry", ["app.training", "torch", "sklearn"]),
        ("app.monitoring.alert_log", ["app.serving", "torch", "mlflow"]),
    ],
)
def test_a_module_loads_only_what_its_stage_needs(module, must_not_load):
    probe = f"import sys, {module}; print(*[m for m in {must_not_load!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == [], f"importing {module} loaded {done.stdout.split()}"
