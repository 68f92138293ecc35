"""Prometheus and Alertmanager configs and alert rules, checked by their own tools."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from app.config import REPO_ROOT

PROMETHEUS = REPO_ROOT / "compose" / "prometheus"
PROMTOOL = shutil.which("promtool")


def promtool(*args: str) -> subprocess.CompletedProcess:
    assert PROMTOOL, "promtool is needed: `make system-deps` installs Debian's prometheus"
    return subprocess.run([PROMTOOL, *args], cwd=PROMETHEUS, capture_output=True, text=True)


@pytest.mark.parametrize(
    "args",
    [
        ("check", "config", "prometheus.yml"),
        ("check", "config", "prometheus.scale.yml"),
        ("check", "rules", "rules.yml"),
    ],
    ids=["config", "scale-config", "rules"],
)
def test_promtool_accepts(args):
    done = promtool(*args)
    assert done.returncode == 0, done.stdout + done.stderr


def test_rule_unit_tests_pass():
    done = promtool("test", "rules", "rules.test.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_is_tested_firing_and_not_firing():
    rules = yaml.safe_load((PROMETHEUS / "rules.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    cases = [
        case
        for test in yaml.safe_load((PROMETHEUS / "rules.test.yml").read_text())["tests"]
        for case in test["alert_rule_test"]
    ]
    fires = {case["alertname"] for case in cases if case["exp_alerts"]}
    quiet = {case["alertname"] for case in cases if not case["exp_alerts"]}
    assert alerts == fires == quiet, {"untested firing": alerts - fires, "quiet": alerts - quiet}


def test_amtool_accepts_the_alertmanager_config():
    amtool = shutil.which("amtool")
    assert amtool, "amtool is needed: `make system-deps` installs Debian's prometheus-alertmanager"
    config = REPO_ROOT / "compose" / "alertmanager" / "alertmanager.yml"
    done = subprocess.run([amtool, "check-config", str(config)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 receivers" in done.stdout


def test_every_alert_goes_to_the_webhook():
    config = yaml.safe_load(
        (REPO_ROOT / "compose" / "alertmanager" / "alertmanager.yml").read_text()
    )
    (receiver,) = config["receivers"]
    assert config["route"]["receiver"] == receiver["name"]
    assert [hook["url"] for hook in receiver["webhook_configs"]] == [
        "http://alert-log:9095/alerts",
        "http://retrainer:9097/alerts",
    ]
