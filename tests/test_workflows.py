"""The GitHub Actions workflows, checked here since Actions cannot run on these machines: their
linters, that they run the same make targets a person runs, no secrets, pinned actions, and
the images they publish being the ones compose runs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from app.config import REPO_ROOT
from app.k8s import default_of
from tests.helpers import services, tool

GITHUB = REPO_ROOT / ".github"
WORKFLOWS = sorted((GITHUB / "workflows").glob("*.yml"))
ACTIONS = sorted((GITHUB / "actions").glob("*/action.yml"))
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")  # owner/repo@<full sha>


def load(path: Path) -> dict:
    workflow = yaml.safe_load(path.read_text())
    if True in workflow:  # YAML reads the key `on` as True; GitHub reads it as "on"
        workflow["on"] = workflow.pop(True)
    return workflow


def steps(path: Path) -> list[dict]:
    document = load(path)
    if "runs" in document:
        return document["runs"]["steps"]
    return [step for job in document["jobs"].values() for step in job["steps"]]


def code_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]


def make_targets() -> set[str]:
    makefile = (REPO_ROOT / "Makefile").read_text()
    return set(re.findall(r"^([\w-]+):", makefile, re.MULTILINE))


def test_zizmor_finds_nothing():
    done = subprocess.run(
        [tool("zizmor"), "--offline", "--no-progress", str(GITHUB)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("schema", "paths"),
    [("vendor.github-workflows", WORKFLOWS), ("vendor.github-actions", ACTIONS)],
    ids=["workflows", "actions"],
)
def test_files_match_githubs_schemas(schema, paths):
    assert paths
    done = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", schema, *map(str, paths)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", WORKFLOWS + ACTIONS, ids=lambda p: p.parent.name + "/" + p.name)
def test_runs_only_make_targets_that_exist(path):
    targets = make_targets()
    for step in steps(path):
        for command in re.findall(r"\bmake\s+([\w-]+)", step.get("run", "")):
            assert command in targets, f"{path.name}: `make {command}` is not in the Makefile"


@pytest.mark.parametrize("path", WORKFLOWS + ACTIONS, ids=lambda p: p.parent.name + "/" + p.name)
def test_no_secret_but_github_token_and_every_action_pinned(path):
    text = "\n".join(code_lines(path))
    assert set(re.findall(r"secrets\.(\w+)", text)) <= {"GITHUB_TOKEN"}
    for step in steps(path):
        action = step.get("uses")
        if action and not action.startswith("./"):
            assert PINNED.match(action), f"{path.name}: {action} is not pinned to a commit"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_least_permissions_concurrency_and_timeouts(path):
    workflow = load(path)
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["concurrency"]["group"]
    for name, job in workflow["jobs"].items():
        assert job["timeout-minutes"] <= 90, name
        extra = set(job.get("permissions", {}).items()) - {("contents", "read")}
        assert extra <= {("packages", "write")}, f"{name}: {extra}"


def test_ci_runs_what_a_person_runs_and_keeps_reports_on_failure():
    workflow = load(GITHUB / "workflows" / "ci.yml")
    # Pushes to main and pull requests: a pull request's commit runs once, not twice.
    assert workflow["on"] == {"push": {"branches": ["main"]}, "pull_request": None}
    assert workflow["concurrency"]["cancel-in-progress"] is True
    commands = [step.get("run", "") for step in steps(GITHUB / "workflows" / "ci.yml")]
    assert commands.count("make test REPORTS=reports") == 1 and "make lint" not in commands
    # ... and `make test` lints first, so CI lints without a job of its own.
    prerequisites = re.search(r"^test: (.*)$", (REPO_ROOT / "Makefile").read_text(), re.M)[1]
    assert prerequisites.split()[0] == "lint"
    uploads = [
        s for s in steps(GITHUB / "workflows" / "ci.yml") if "upload-artifact" in s.get("uses", "")
    ]
    assert uploads and uploads[0]["if"] == "failure()" and "reports/" in uploads[0]["with"]["path"]


def test_every_workflow_that_installs_shares_one_setup():
    for path in WORKFLOWS:
        uses = [step.get("uses", "") for step in steps(path)]
        assert not [u for u in uses if u.startswith("actions/setup-python")], path.name
        if any("make" in step.get("run", "") for step in steps(path)):
            assert "./.github/actions/setup" in uses, path.name
    (setup,) = ACTIONS
    assert [s.get("run") for s in steps(setup)][-1] == "make setup"


def test_the_published_images_are_the_ones_compose_runs():
    workflow = load(GITHUB / "workflows" / "docker.yml")
    job = workflow["jobs"]["image"]
    build = next(s for s in job["steps"] if "build-push-action" in s.get("uses", ""))["with"]
    meta = next(s for s in job["steps"] if "metadata-action" in s.get("uses", ""))["with"]
    compose = {
        s["build"]["target"]: default_of(s["image"]) for s in services().values() if "build" in s
    }
    assert set(job["strategy"]["matrix"]["target"]) == set(compose)
    assert build["file"] == "compose/Dockerfile" and build["context"] == "."
    assert "'linux/amd64,linux/arm64'" in build["platforms"]  # pull requests: amd64 only
    assert build["push"] == "${{ github.event_name != 'pull_request' }}"
    # compose names images ${IMAGE_REPOSITORY:-mlops-workbook}/<target>: the same path below
    # ghcr.io/<owner>/ is what IMAGE_REPOSITORY=ghcr.io/<owner>/mlops-workbook pulls.
    assert meta["images"].endswith("/mlops-workbook/${{ matrix.target }}")
    for target, image in compose.items():
        assert image.split(":")[0] == f"mlops-workbook/{target}"
    tags = meta["tags"]
    assert all(kind in tags for kind in ("type=sha", "type=ref,event=branch", "type=semver"))


def test_the_kubernetes_manifests_are_checked_where_the_images_are_built():
    commands = [
        step.get("run", "")
        for step in load(GITHUB / "workflows" / "docker.yml")["jobs"]["manifests"]["steps"]
    ]
    assert "make k8s-check" in commands


def test_nightly_tests_the_newest_releases_apart_from_ci():
    workflow = load(GITHUB / "workflows" / "nightly.yml")
    assert set(workflow["on"]) == {"schedule", "workflow_dispatch"}
    assert "make test-latest REPORTS=reports" in [
        s.get("run") for s in steps(GITHUB / "workflows" / "nightly.yml")
    ]


def test_retrain_runs_on_new_data_on_a_schedule_and_by_hand():
    triggers = load(GITHUB / "workflows" / "retrain.yml")["on"]
    assert "data.dvc" in triggers["push"]["paths"]
    assert triggers["schedule"][0]["cron"]
    assert triggers["workflow_dispatch"]["inputs"]["force"]["type"] == "boolean"


def test_retrain_runs_make_retrain():
    commands = [step.get("run", "") for step in steps(GITHUB / "workflows" / "retrain.yml")]
    assert any(command.startswith("make retrain") for command in commands)
