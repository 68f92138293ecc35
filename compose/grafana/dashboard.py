"""The "Model service" Grafana dashboard, written with Grafana's foundation SDK.

Grafana provisions the JSON this script writes (`dashboards/model-service.json`). The JSON is
committed, so Grafana needs no Python; edit this file, never the JSON, then:

    .venv/bin/python compose/grafana/dashboard.py          # rewrite the JSON
    .venv/bin/python compose/grafana/dashboard.py --check  # exit 1 if the JSON is stale

Every panel asks the provisioned Prometheus data source (uid `prometheus`). Every rate and
increase runs over `$__rate_interval`: Grafana makes it at least four scrape intervals (the data
source's `timeInterval`), so each window holds enough samples for a rate.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from string import ascii_uppercase

with warnings.catch_warnings():
    # The SDK nudges towards the v2 dashboard schema. Grafana's file provisioning reads only the
    # classic JSON model ("dashboard appears to be in v2 format" otherwise), so we stay with it.
    warnings.simplefilter("ignore", DeprecationWarning)
    from grafana_foundation_sdk.builders import common as common_builder
    from grafana_foundation_sdk.builders import dashboard, prometheus, stat, table, timeseries
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models import common, units
    from grafana_foundation_sdk.models.dashboard import (
        DashboardCursorSync,
        DataSourceRef,
        DataTransformerConfig,
        DynamicConfigValue,
        Threshold,
        ThresholdsMode,
        ValueMap,
        ValueMappingResult,
    )
    from grafana_foundation_sdk.models.prometheus import PromQueryFormat

OUT = Path(__file__).resolve().parent / "dashboards" / "model-service.json"
PROMETHEUS = DataSourceRef(type_val="prometheus", uid="prometheus")  # pinned in provisioning/
RATE = "$__rate_interval"
# Grafana migrates a dashboard's schema up, never down. The SDK writes its newest (42), which a
# Grafana still at 41 (12.0) cannot migrate "to" 41; 41 loads as is in 11.x, later versions
# migrate it up (the steps after 41 touch nothing this dashboard uses).
SCHEMA_VERSION = 41

RED = DynamicConfigValue("color", {"mode": "fixed", "fixedColor": "red"})
# A series drawn as a reference to compare the others with: a red dashed line, not filled.
REFERENCE_LINE = [
    RED,
    DynamicConfigValue("custom.lineStyle", {"fill": "dash", "dash": [10, 10]}),
    DynamicConfigValue("custom.fillOpacity", 0),
]


def query(expr: str, legend: str | None = None) -> prometheus.Dataquery:
    """A PromQL query on the provisioned Prometheus; `legend` names its series."""
    target = prometheus.Dataquery().datasource(PROMETHEUS).expr(expr)
    return target if legend is None else target.legend_format(legend)


def timeseries_panel(
    title: str,
    description: str,
    unit: str,
    *queries: prometheus.Dataquery,
    alert_at: float | None = None,
) -> timeseries.Panel:
    """Lines over time, one query per `refId` A, B, C...; `alert_at` draws an alert's threshold."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .unit(unit)
        .legend(
            common_builder.VizLegendOptions()
            .show_legend(True)
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
        )
        .tooltip(
            common_builder.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
    )
    for ref_id, target in zip(ascii_uppercase, queries, strict=False):
        panel.with_target(target.ref_id(ref_id).range())
    if alert_at is not None:
        panel.thresholds(two_colours("green", alert_at, "red")).thresholds_style(
            common_builder.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED)
        )
    return panel


def counts_panel(
    title: str, description: str, counter: str, by: str, bad: str, axis: str
) -> timeseries.Panel:
    """Bars of how much a counter grew per interval, one colour per `by` value; `bad` in red."""
    return (
        timeseries_panel(
            title,
            description,
            units.Short,
            query(f"sum by ({by}) (increase({counter}[{RATE}]))", "{{" + by + "}}"),
        )
        .draw_style(common.GraphDrawStyle.BARS)
        .fill_opacity(80)
        .override_by_name(bad, [RED])
        .axis_label(axis)
        .decimals(0)
        .min(0)
    )


def stat_panel(title: str, description: str, target: prometheus.Dataquery) -> stat.Panel:
    """One big number: the query's current value."""
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .with_target(target.ref_id("A").instant())
        .reduce_options(common_builder.ReduceDataOptions().calcs(["lastNotNull"]))
        .graph_mode(common.BigValueGraphMode.NONE)
        .text_mode(common.BigValueTextMode.VALUE)
        .decimals(0)
    )


def table_panel(
    title: str, description: str, target: prometheus.Dataquery, hide: list[str]
) -> table.Panel:
    """The query's current series as rows, their labels as columns, minus the `hide` columns."""
    return (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .with_target(target.ref_id("A").instant().format(PromQueryFormat.TABLE))
        .with_transformation(
            DataTransformerConfig("organize", options={"excludeByName": dict.fromkeys(hide, True)})
        )
    )


def two_colours(below: str, value: float, above: str) -> dashboard.ThresholdsConfig:
    """Thresholds: colour `below` under `value`, colour `above` from it on."""
    return (
        dashboard.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=None, color=below), Threshold(value=value, color=above)])
    )


def model_service() -> dashboard.Dashboard:
    """The dashboard, row by row: serving and alerts, traffic, the model's answers, drift."""
    panels = [
        # Is a model served, and is anything firing?
        stat_panel(
            "Served model version",
            "Registry version of the model the API serves. Bad: none (0), the API answers 503 "
            "(NoModelLoaded). A new number is a promotion that the API picked up.",
            query("api_model_version"),
        )
        .mappings([ValueMap({"0": ValueMappingResult(text="none", index=0)})])
        .thresholds(two_colours("red", 1, "green"))
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .span(6)
        .height(6),
        table_panel(
            "Firing alerts",
            "Alerts from rules.yml that fire now (Prometheus' ALERTS series). Good: empty.",
            query('ALERTS{alertstate="firing"}'),
            hide=["Time", "__name__", "alertstate", "Value"],
        )
        .no_value("No alert is firing")
        .span(18)
        .height(6),
        # Traffic: the RED method (rate, errors, duration).
        timeseries_panel(
            "Request rate",
            "Requests answered per second, by route and status; Prometheus' scrapes of /metrics "
            "are the steady baseline. Bad: /predict dropping to zero, 4xx or 5xx series growing.",
            units.RequestsPerSecond,
            query(
                f"sum by (route, status) (rate(api_requests_total[{RATE}]))",
                "{{route}} {{status}}",
            ),
        )
        .span(8)
        .height(8),
        timeseries_panel(
            "Error ratio",
            "Share of requests that end in a 5xx (a 4xx is bad input, not our fault). Bad: above "
            "the dashed line: 5%, the threshold of the ApiErrorRatioHigh alert.",
            units.PercentUnit,
            query(
                f'(sum(rate(api_requests_total{{status=~"5.."}}[{RATE}])) or vector(0))'
                f" / sum(rate(api_requests_total[{RATE}]))",
                "5xx share",
            ),
            alert_at=0.05,  # ApiErrorRatioHigh in compose/prometheus/rules.yml
        )
        .min(0)
        .span(8)
        .height(8),
        timeseries_panel(
            "Latency",
            "Time to answer /predict and /predict/image: median, p95 and p99. Bad: p95 above "
            "the dashed line: 250 ms, the threshold of the ApiLatencyHigh alert.",
            units.Seconds,
            *(
                query(
                    f"histogram_quantile({q}, sum by (le) (rate("
                    f'api_request_duration_seconds_bucket{{route=~"/predict.*"}}[{RATE}])))',
                    legend,
                )
                for q, legend in [("0.5", "p50"), ("0.95", "p95"), ("0.99", "p99")]
            ),
            alert_at=0.25,  # ApiLatencyHigh in compose/prometheus/rules.yml
        )
        .min(0)
        .span(8)
        .height(8),
        # What the model answers.
        timeseries_panel(
            "Predictions by digit",
            "Digits predicted per second, one series per digit. Bad: a digit taking over or "
            "vanishing: the inputs changed, or the model reads them differently.",
            units.Short,
            query(f"sum by (digit) (rate(api_predictions_total[{RATE}]))", "{{digit}}"),
        )
        .axis_label("predictions/s")
        .min(0)
        .span(8)
        .height(8),
        timeseries_panel(
            "Confidence",
            "Mean probability of the predicted digit over the drift window, against the same "
            "mean on the val split at training time (dashed), and the median of all "
            "predictions. Bad: the window mean well below the reference.",
            units.PercentUnit,
            query("api_window_confidence_mean", "window mean"),
            query("api_reference_confidence_mean", "reference mean (val split)"),
            query(
                "histogram_quantile(0.5, sum by (le) "
                f"(rate(api_prediction_confidence_bucket[{RATE}])))",
                "p50, all predictions",
            ),
        )
        .override_by_query("B", REFERENCE_LINE)
        .min(0)
        .max(1)
        .span(8)
        .height(8),
        counts_panel(
            "Model loads",
            "Model loads by outcome. A success after a promotion is expected. Bad: any failure, "
            "the new champion did not load and the old one still serves (ModelLoadFailed).",
            "api_model_loads_total",
            by="outcome",
            bad="failure",
            axis="loads",
        )
        .span(8)
        .height(8),
        # Do the inputs still look like the training data?
        timeseries_panel(
            "Input drift",
            "Distance between the inputs in the drift window and the training data (mean "
            "Jensen-Shannon distance over pixels and ink: 0 same, 1 nothing in common), against "
            "its threshold (dashed). Bad: above the line, where the InputDrift alert fires.",
            units.NoUnit,
            query("api_input_drift_score", "drift score"),
            query("api_input_drift_threshold", "threshold"),
        )
        .override_by_query("B", REFERENCE_LINE)
        .min(0)
        .span(10)
        .height(8),
        timeseries_panel(
            "Prediction shift",
            "Distance between the shares of digits predicted in the drift window and on the val "
            "split (Jensen-Shannon: 0 same, 1 nothing in common). Bad: a steady rise, the model "
            "answers with other digits than it did on known data.",
            units.NoUnit,
            query("api_prediction_shift", "prediction shift"),
        )
        .min(0)
        .span(10)
        .height(8),
        stat_panel(
            "Inputs in drift window",
            "How many recent inputs the drift scores are computed on. Below the minimum "
            "(monitoring.min_inputs in params.yaml) the scores are empty, not zero.",
            query("api_drift_window_inputs"),
        )
        .color_mode(common.BigValueColorMode.NONE)
        .span(4)
        .height(8),
        # Are the answers still right? Only labels from the field (POST /feedback) can say.
        timeseries_panel(
            "Live accuracy and drift",
            "Share of the served model's last labelled predictions it got right (labels sent to "
            "POST /feedback), against its threshold (dashed), beside the input drift score. "
            "Drift is not degradation: inputs can drift while the answers stay right. Bad: "
            "accuracy under the line, where the ModelDegraded alert fires. Empty: too few labels.",
            units.NoUnit,
            query("api_live_accuracy", "live accuracy"),
            query("api_live_accuracy_threshold", "accuracy threshold"),
            query("api_input_drift_score", "drift score"),
        )
        .override_by_query("B", REFERENCE_LINE)
        .min(0)
        .max(1)
        .span(10)
        .height(8),
        counts_panel(
            "Labels from the field",
            "Labels received on POST /feedback: correct (the model had predicted that digit) or "
            "wrong. Bad: a run of wrong ones.",
            "api_feedback_labels_total",
            by="outcome",
            bad="wrong",
            axis="labels",
        )
        .span(10)
        .height(8),
        stat_panel(
            "Labels counted",
            "How many labelled predictions the live accuracy is computed on (the last "
            "monitoring.live_window of the served model). Below monitoring.live_min_labels "
            "(params.yaml) the accuracy is empty, not zero.",
            query("api_live_labels"),
        )
        .color_mode(common.BigValueColorMode.NONE)
        .span(4)
        .height(8),
        # The loop: retrains the watcher (or `make retrain`) ran, and what the gate decided.
        counts_panel(
            "Retrains",
            "Retrains by decision: promoted (a new champion), rejected by the gate, skipped (the "
            "data was already judged: an alert or a poll without new data), failed (bad data, "
            "MLflow down). Bad: failures, or drift alerts that no promotion follows.",
            "retrain_runs_total",
            by="decision",
            bad="failed",
            axis="retrains",
        )
        .span(10)
        .height(8),
        stat_panel(
            "Last retrain duration",
            "How long the last retrain took, from the data check to the gate's decision.",
            query("retrain_last_duration_seconds"),
        )
        .unit(units.Seconds)
        .decimals(1)
        .color_mode(common.BigValueColorMode.NONE)
        .span(4)
        .height(8),
        # Students drawing digits on the API's /playground page (requests marked X-Client).
        timeseries_panel(
            "Playground traffic",
            "Predictions answered per second, from the playground page (digits drawn in a "
            "browser at /playground) and from every other client (api). Drawings are not "
            "scans: while a class plays, watch Input drift rise.",
            units.RequestsPerSecond,
            query(
                f'sum by (client) (rate(api_requests_total{{route=~"/predict.*", status="200"}}'
                f"[{RATE}]))",
                "{{client}}",
            ),
        )
        .min(0)
        .span(10)
        .height(8),
        # Progressive delivery (app/serving/rollout.py): the challenger in shadow or on a canary.
        timeseries_panel(
            "Traffic by role",
            "Requests answered per second by the champion and by the challenger (its canary "
            "share of clients), and challenger failures the champion answered for (fallback). "
            "Bad: fallbacks; a challenger line in shadow mode (it answers no one there).",
            units.RequestsPerSecond,
            query(
                f"sum by (role, outcome) (rate(api_role_requests_total[{RATE}]))",
                "{{role}} {{outcome}}",
            ),
        )
        .min(0)
        .span(10)
        .height(8),
        stat_panel(
            "Challenger",
            "The challenger the API follows (@challenger in the registry), its mode (shadow or "
            "canary) and canary share; version 0 and none: there is none (or it was rolled "
            "back: CanaryRolledBack).",
            query("api_challenger_info", "v{{version}} {{mode}} {{share}}"),
        )
        .color_mode(common.BigValueColorMode.NONE)
        .span(4)
        .height(8),
        timeseries_panel(
            "Shadow agreement and accuracy by role",
            "Share of the requests the champion answered on which the challenger, scoring them "
            "in shadow, said the same digit; and where labels arrived, the share each got right "
            "(the challenger's in shadow, and each model version's own answers). Bad: the "
            "challenger's accuracy under the champion's.",
            units.NoUnit,
            query(
                f'sum(rate(api_shadow_predictions_total{{agreement="agree"}}[{RATE}])) / '
                f"sum(rate(api_shadow_predictions_total[{RATE}]))",
                "agreement (shadow)",
            ),
            query(
                f'sum(rate(api_shadow_labels_total{{outcome="correct"}}[{RATE}])) / '
                f"sum(rate(api_shadow_labels_total[{RATE}]))",
                "challenger accuracy (shadow)",
            ),
            query(
                f'sum by (model_version) (rate(api_feedback_labels_total{{outcome="correct"}}'
                f"[{RATE}])) / sum by (model_version) (rate(api_feedback_labels_total[{RATE}]))",
                "v{{model_version}} accuracy",
            ),
        )
        .min(0)
        .max(1)
        .span(10)
        .height(8),
        timeseries_panel(
            "Model latency by role (p50)",
            "Median time the model itself took on a request, champion and canary apart (the "
            "rollback rule compares these). Bad: the challenger far above the champion.",
            units.Seconds,
            query(
                "histogram_quantile(0.5, sum by (le, role) "
                f"(rate(api_model_seconds_bucket[{RATE}])))",
                "{{role}}",
            ),
        )
        .min(0)
        .span(4)
        .height(8),
    ]
    builder = (
        dashboard.Dashboard("Model service")
        .uid("model-service")
        .description(
            "The model API: traffic, errors, latency, predictions, model, drift, labels from the "
            "field, retrains, and the challenger in shadow or on a canary."
        )
        .tags(["mlops-workbook"])
        .refresh("5s")
        .time("now-15m", "now")
        .tooltip(DashboardCursorSync.CROSSHAIR)  # one cursor across panels: compare moments
    )
    for panel_id, panel in enumerate(panels, start=1):
        builder.with_panel(panel.id(panel_id))  # explicit ids: what a Grafana export has
    built = builder.build()
    built.schema_version = SCHEMA_VERSION
    return built


def render() -> str:
    """The dashboard as the JSON text committed next to this script."""
    return JSONEncoder(sort_keys=True, indent=2).encode(model_service()) + "\n"


def main(argv: list[str] | None = None, out: Path = OUT) -> None:
    """Write the dashboard JSON, or with `--check` exit 1 if the file differs from it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    args = parser.parse_args(argv)
    text = render()
    if not args.check:
        out.write_text(text)
    elif not out.is_file() or out.read_text() != text:
        sys.exit(
            f"{out} is not what compose/grafana/dashboard.py generates. Edit dashboard.py, "
            "not the JSON, then run `.venv/bin/python compose/grafana/dashboard.py`."
        )


if __name__ == "__main__":
    main()
