"""The rollouts dashboard: canary against stable side by side, rollout state, model versions
and retrain job outcomes."""

from grafana.spec import SEL, Dashboard, Panel, Query, Row

COLOR_MAPPINGS = (("0", "idle", "text"), ("1", "active", "green"))

ROLLOUTS = Dashboard(
    uid="taxi-serve-rollouts",
    title="taxi-serve / Rollouts",
    description="Canary against stable (latency, errors, MAE), canary weight or active color, "
                "model versions over time and retrain job outcomes.",
    rows=(
        Row("Rollout state", (
            Panel("Canary weight", "gauge", (Query(
                f"max(taxi_rollout_canary_weight{{{SEL}}})"),), unit="percent", min=0, max=100,
                width=6, height=6),
            Panel("Active color (blue/green)", "stat", (Query(
                f"max by (color) (taxi_rollout_active_color{{{SEL}}})", "{{color}}"),),
                width=6, height=6, mappings=COLOR_MAPPINGS),
            Panel("Model age by track", "stat", (Query(
                "(time() - max by (track, model_version) "
                f"(taxi_model_created_timestamp_seconds{{{SEL}}})) / 86400",
                "{{track}} {{model_version}}"),), unit="d", width=12, height=6,
                thresholds=((30, "orange"), (45, "red"))),
        )),
        Row("Canary against stable", (
            Panel("Request rate by track", "timeseries", (Query(
                f"sum by (track) (taxi_serve:requests:rate1m{{{SEL}}})", "{{track}}"),),
                unit="reqps"),
            Panel("p99 latency by track and protocol", "timeseries", (Query(
                f"max by (track, protocol) (taxi_serve:request_duration_seconds:p99_1m{{{SEL}}})",
                "{{track}} {{protocol}}"),), unit="s"),
            Panel("p50 / p95 latency by track", "timeseries", (
                Query(f"max by (track) (taxi_serve:request_duration_seconds:p50_1m{{{SEL}}})",
                      "p50 {{track}}"),
                Query(f"max by (track) (taxi_serve:request_duration_seconds:p95_1m{{{SEL}}})",
                      "p95 {{track}}")), unit="s"),
            Panel("Server error ratio by track", "timeseries", (Query(
                f"taxi_serve:request_errors:ratio_rate5m{{{SEL}}}", "{{track}}"),),
                unit="percentunit", thresholds=((0.01, "red"),)),
            Panel("Rolling MAE (1 h) by track", "timeseries", (Query(
                f'max by (track, target) (taxi_rolling_mae{{{SEL}, window="1h"}})',
                "{{track}} {{target}}"),), unit="short"),
            Panel("Fallback ratio by track", "timeseries", (Query(
                f"taxi_serve:feature_fallbacks:ratio_rate5m{{{SEL}}}", "{{track}}"),),
                unit="percentunit"),
        )),
        Row("Model versions and retraining", (
            Panel("Trips by model version and track", "timeseries", (Query(
                f"sum by (model_version, track) (taxi_serve:trips:rate1m{{{SEL}}})",
                "{{model_version}} {{track}}"),), unit="short", stacked=True),
            Panel("Canary weight over time", "timeseries", (Query(
                f"max(taxi_rollout_canary_weight{{{SEL}}})", "canary weight"),),
                unit="percent", min=0, max=100),
            Panel("Retrain outcomes (runs since install)", "bargauge", (Query(
                f"max by (outcome) (taxi_retrain_outcomes{{{SEL}}})", "{{outcome}}"),),
                unit="short"),
            Panel("Last retrain run by outcome", "stat", (Query(
                f"max by (outcome) (taxi_retrain_last_run_timestamp_seconds{{{SEL}}}) * 1000",
                "{{outcome}}"),), unit="dateTimeFromNow"),
        )),
    ),
)
