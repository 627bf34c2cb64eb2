"""The drift and accuracy dashboard: drift tests from the drift monitor, the prediction
distribution, and rolling MAE from feedback against each model's offline baseline."""

from grafana.spec import SEL, Dashboard, Panel, Query, Row

RI = "$__rate_interval"
THRESHOLD = Query(f"max(taxi_drift_p_value_threshold{{{SEL}}})", "threshold")
DRIFT_MAPPINGS = (("0", "no drift", "green"), ("1", "DRIFT", "red"))


def _mae(target: str, unit: str) -> Panel:
    return Panel(
        f"Rolling MAE per model version: {target} ({unit})", "timeseries", (
            Query(f'max by (model_version, track, window) (taxi_rolling_mae{{{SEL}, '
                  f'target="{target}"}})', "{{model_version}} {{track}} {{window}}"),
            Query(f'max by (model_version) (taxi_model_offline_mae{{{SEL}, '
                  f'target="{target}"}})', "offline baseline {{model_version}}")),
        unit="s" if target == "duration" else "currencyUSD",
        description="Mean absolute error of predictions that received feedback, over "
                    "rolling windows; the dashed baseline is the model's MAE on its "
                    "evaluation month.")


def _prediction_quantiles(metric: str, unit: str, title: str) -> Panel:
    return Panel(title, "timeseries", tuple(
        Query(f"histogram_quantile({q}, sum by (le, model_version) "
              f"(rate({metric}_bucket{{{SEL}}}[{RI}])))",
              f"p{round(float(q) * 100)} {{{{model_version}}}}")
        for q in ("0.1", "0.5", "0.9")), unit=unit, width=8)


DRIFT = Dashboard(
    uid="taxi-serve-drift-accuracy",
    title="taxi-serve / Drift and accuracy",
    description="Per-feature drift tests against the training reference, the drift verdict, "
                "prediction distribution shift, and rolling MAE from feedback.",
    rows=(
        Row("Drift verdict", (
            Panel("Drift verdict", "stat", (Query(
                f'max by (model_version) (taxi_drift_detected{{{SEL}, kind="any"}})',
                "{{model_version}}"),), width=6, height=5, mappings=DRIFT_MAPPINGS),
            Panel("Features below the p-value threshold", "stat", (Query(
                f"taxi_serve:drift_features_below_threshold:count{{{SEL}}}",
                "{{model_version}}"),), width=6, height=5, thresholds=((1, "red"),),
                description="Uncorrected count; the verdict applies the correction."),
            Panel("Drift verdict over time", "state-timeline", (Query(
                f"max by (model_version, kind) (taxi_drift_detected{{{SEL}}})",
                "{{model_version}} {{kind}}"),), width=12, height=5,
                mappings=DRIFT_MAPPINGS),
        )),
        Row("Feature drift", (
            Panel("Per-feature p-values (below the threshold line = drifted)", "timeseries", (
                Query(f"min by (feature) (taxi_drift_feature_p_value{{{SEL}}})", "{{feature}}"),
                THRESHOLD), unit="none", min=0, max=1, width=24, height=9,
                description="The line is the drift monitor's significance level before the "
                            "multiple-testing correction (Bonferroni or FDR) its verdict "
                            "applies, so a feature just under it need not be flagged."),
            Panel("Per-feature test statistics", "timeseries", (Query(
                f"max by (feature) (taxi_drift_feature_statistic{{{SEL}}})", "{{feature}}"),),
                unit="none"),
            Panel("Drift evaluations by result", "timeseries", (
                Query(f"sum by (result) (rate(taxi_drift_evaluations_total{{{SEL}}}[{RI}]))",
                      "{{result}}"),
                Query("histogram_quantile(0.95, sum by (le) (rate("
                      f"taxi_drift_evaluation_duration_seconds_bucket{{{SEL}}}[{RI}])))",
                      "p95 evaluation seconds")), unit="short"),
            Panel("Drift window size and last evaluation age", "timeseries", (
                Query(f"max by (model_version) (taxi_drift_window_size{{{SEL}}})",
                      "window {{model_version}}"),
                Query("time() - max by (model_version) "
                      f"(taxi_drift_last_evaluation_timestamp_seconds{{{SEL}}})",
                      "age s {{model_version}}")), unit="short"),
        )),
        Row("Prediction distribution", (
            Panel("Prediction drift p-values", "timeseries", (
                Query(f"min by (target) (taxi_drift_prediction_p_value{{{SEL}}})",
                      "{{target}}"), THRESHOLD), unit="none", min=0, max=1, width=8),
            _prediction_quantiles("taxi_predicted_duration_seconds", "s",
                                  "Predicted duration quantiles by model version"),
            _prediction_quantiles("taxi_predicted_fare_usd", "currencyUSD",
                                  "Predicted fare quantiles by model version"),
        )),
        Row("Accuracy from feedback", (
            _mae("duration", "s"),
            _mae("fare", "USD"),
            Panel("Rolling MAE (1 h) over the offline baseline", "timeseries", (Query(
                f"taxi_serve:rolling_mae_1h:ratio_offline{{{SEL}}}",
                "{{model_version}} {{track}} {{target}}"),), unit="none",
                thresholds=((1.25, "red"),),
                description="1 = as accurate as offline; the alert fires above 1.25."),
            Panel("Feedback volume", "timeseries", (
                Query(f"sum by (result) (rate(taxi_feedback_total{{{SEL}}}[{RI}]))",
                      "{{result}}/s"),
                Query(f'sum by (track, target) (taxi_rolling_feedback_samples{{{SEL}, '
                      'window="1h"})', "samples in 1 h {{track}} {{target}}")),
                unit="short"),
        )),
    ),
)
