"""The GitHub Actions workflows: their triggers, and that they run the same make targets."""

from __future__ import annotations

import yaml

from app.config import REPO_ROOT

WORKFLOWS = REPO_ROOT / ".github" / "workflows"


def load(name: str) -> dict:
    text = (WORKFLOWS / name).read_text()
    workflow = yaml.safe_load(text)
    # YAML reads the key `on` as True; GitHub reads it as "on".
    workflow["on"] = workflow.pop(True)
    return workflow


def test_retrain_runs_on_new_data_on_a_schedule_and_by_hand():
    triggers = load("retrain.yml")["on"]
    assert "data.dvc" in triggers["push"]["paths"]
    assert triggers["schedule"][0]["cron"]
    assert triggers["workflow_dispatch"]["inputs"]["force"]["type"] == "boolean"


def test_retrain_runs_make_retrain_with_no_secret_and_read_only_access():
    workflow = load("retrain.yml")
    assert workflow["permissions"] == {"contents": "read"}
    (job,) = workflow["jobs"].values()
    commands = [step.get("run", "") for step in job["steps"]]
    assert any(command.startswith("make retrain") for command in commands)
    lines = (WORKFLOWS / "retrain.yml").read_text().splitlines()
    assert not [line for line in lines if "secrets." in line and not line.lstrip().startswith("#")]
