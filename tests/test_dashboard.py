"""Grafana provisioning: the committed dashboard JSON, its generator and the two YAML files."""

from __future__ import annotations

import importlib.util
import json
import re

import pytest
import yaml

from app.config import REPO_ROOT

GRAFANA = REPO_ROOT / "compose" / "grafana"
DASHBOARD_JSON = GRAFANA / "dashboards" / "model-service.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "provider.yml"
PROMETHEUS = REPO_ROOT / "compose" / "prometheus"
RANGE_WINDOW = re.compile(r"(?:rate|increase)\([^\[]*\[([^\]]*)\]")  # rate(x{...}[THIS])

REQUIRED_PANELS = {
    "Request rate",
    "Error ratio",
    "Latency",
    "Predictions by digit",
    "Confidence",
    "Input drift",
    "Prediction shift",
    "Served model version",
    "Model loads",
    "Firing alerts",
    "Playground traffic",
}


@pytest.fixture(scope="module")
def generator():
    """compose/grafana/dashboard.py as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("grafana_dashboard", GRAFANA / "dashboard.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD_JSON.read_text())


@pytest.fixture(scope="module")
def datasource() -> dict:
    (only,) = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    return only


def test_committed_json_is_what_the_generator_writes(generator):
    assert DASHBOARD_JSON.read_text() == generator.render(), (
        "stale dashboard JSON: run `.venv/bin/python compose/grafana/dashboard.py`"
    )


def test_check_fails_on_a_stale_file_and_passes_once_rewritten(generator, tmp_path):
    out = tmp_path / "model-service.json"
    out.write_text(DASHBOARD_JSON.read_text().replace("Model service", "Edited by hand"))
    with pytest.raises(SystemExit) as stale:
        generator.main(["--check"], out=out)
    assert "dashboard.py" in str(stale.value.code)  # a message: exit status 1, not 0
    generator.main([], out=out)
    generator.main(["--check"], out=out)  # no SystemExit
    assert out.read_text() == DASHBOARD_JSON.read_text()


def test_identity_and_time_settings(dashboard):
    expected = {
        "title": "Model service",
        "uid": "model-service",
        "refresh": "5s",
        "time": {"from": "now-15m", "to": "now"},
        "tags": ["mlops-workbook"],
    }
    assert {key: dashboard[key] for key in expected} == expected


def test_every_panel_queries_the_provisioned_prometheus(dashboard, datasource):
    ref = {"type": datasource["type"], "uid": datasource["uid"]}
    assert ref == {"type": "prometheus", "uid": "prometheus"}
    for panel in dashboard["panels"]:
        title = panel["title"]
        assert panel["datasource"] == ref, title
        assert any(target.get("expr", "").strip() for target in panel["targets"]), title
        for target in panel["targets"]:
            assert target["datasource"] == ref, title


def test_required_panels_are_there(dashboard):
    titles = [panel["title"] for panel in dashboard["panels"]]
    assert len(titles) == len(set(titles)), titles
    missing = REQUIRED_PANELS - set(titles)
    assert not missing, missing
    assert all(panel.get("description") for panel in dashboard["panels"])


def test_panels_tile_the_24_column_grid(dashboard):
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), ids


def test_rates_and_increases_use_the_rate_interval(dashboard):
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    windows = {window for expr in exprs for window in RANGE_WINDOW.findall(expr)}
    assert windows == {"$__rate_interval"}


def test_provisioning_reads_urls_and_paths_from_the_environment(datasource):
    (provider,) = yaml.safe_load(PROVIDERS.read_text())["providers"]
    assert provider["options"]["path"] == "${GRAFANA_DASHBOARDS_DIR}"
    assert datasource["url"] == "${PROMETHEUS_URL}"


def test_provisioning_settings(datasource):
    (provider,) = yaml.safe_load(PROVIDERS.read_text())["providers"]
    assert (provider["type"], provider["folder"]) == ("file", "MLOps workbook")
    assert provider["disableDeletion"] is True and provider["allowUiUpdates"] is False
    assert (datasource["name"], datasource["isDefault"], datasource["editable"]) == (
        "Prometheus",
        True,
        False,
    )
    assert datasource["jsonData"]["timeInterval"] == "5s"


def test_time_interval_is_the_scrape_interval(datasource):
    """$__rate_interval assumes it: windows shorter than four real scrapes leave gaps."""
    scrape = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())["global"]
    assert datasource["jsonData"]["timeInterval"] == scrape["scrape_interval"]


@pytest.mark.parametrize(
    ("title", "alert"), [("Error ratio", "ApiErrorRatioHigh"), ("Latency", "ApiLatencyHigh")]
)
def test_dashed_lines_are_the_alert_thresholds(dashboard, title, alert):
    rules = [
        rule
        for group in yaml.safe_load((PROMETHEUS / "rules.yml").read_text())["groups"]
        for rule in group["rules"]
    ]
    (expr,) = [rule["expr"] for rule in rules if rule.get("alert") == alert]
    (panel,) = [panel for panel in dashboard["panels"] if panel["title"] == title]
    line = panel["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"]
    assert expr.rstrip().endswith(f"> {line}"), (expr, line)
