"""Prometheus recording rules and alerts for taxi-serve, rendered to one YAML rule file.

Recording rules pre-aggregate the heavy dashboard queries (histogram bucket rates, ratios,
SLO windows) by the labels the dashboards filter on (namespace, release) plus the dimension
they plot. Alerts read the recorded series where one exists, so a dashboard and the alert it
explains show the same number.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from grafana.spec import KEEP

# Latency SLO: 99 % of prediction requests answered inside the service within 50 ms (a bucket
# boundary of taxi_request_duration_seconds, so the ratio is exact).
SLO_LATENCY_LE = "0.05"
SLO_TARGET = 0.99
# gRPC status codes that are the server's fault, beside HTTP 5xx.
ERROR_STATUS = "5xx|internal|unknown|unavailable|deadline_exceeded|resource_exhausted"
SLO_WINDOWS = ("5m", "30m", "1h", "6h")
MODEL_MAX_AGE_DAYS = 45


@dataclass(frozen=True)
class Recording:
    record: str
    expr: str


@dataclass(frozen=True)
class Alert:
    alert: str
    expr: str
    for_: str
    severity: str
    summary: str
    description: str
    labels: dict = field(default_factory=dict)


def _ratio(num: str, den: str, by: str) -> str:
    """num/den by `by`, where a missing numerator (no errors yet) counts as 0 rather than
    leaving the ratio without data."""
    return f"(sum by ({by}) ({num}) or sum by ({by}) ({den}) * 0) / sum by ({by}) ({den})"


def _recordings() -> list[Recording]:
    rules = [
        Recording("taxi_serve:requests:rate1m",
                  f"sum by ({KEEP}, protocol, endpoint, status, track, model_version) "
                  "(rate(taxi_requests_total[1m]))"),
        Recording("taxi_serve:request_duration_seconds_bucket:rate1m",
                  f"sum by ({KEEP}, le, protocol, endpoint, track, model_version) "
                  "(rate(taxi_request_duration_seconds_bucket[1m]))"),
    ]
    for q in ("50", "95", "99"):
        rules.append(Recording(
            f"taxi_serve:request_duration_seconds:p{q}_1m",
            f"histogram_quantile(0.{q}, sum by ({KEEP}, le, protocol, track) "
            "(taxi_serve:request_duration_seconds_bucket:rate1m))"))
    by = f"{KEEP}, track"
    rules.append(Recording(
        "taxi_serve:request_errors:ratio_rate5m",
        _ratio(f'rate(taxi_requests_total{{status=~"{ERROR_STATUS}"}}[5m])',
               "rate(taxi_requests_total[5m])", by)))
    for w in SLO_WINDOWS:
        rules.append(Recording(
            f"taxi_serve:latency_slo_violations:ratio_rate{w}",
            f"1 - sum by ({by}) (rate(taxi_request_duration_seconds_bucket"
            f'{{le="{SLO_LATENCY_LE}"}}[{w}])) / sum by ({by}) '
            f"(rate(taxi_request_duration_seconds_count[{w}]))"))
    rules += [
        Recording("taxi_serve:feature_fetch_duration_seconds:p99_1m",
                  f"histogram_quantile(0.99, sum by ({KEEP}, le, source) "
                  "(rate(taxi_feature_fetch_duration_seconds_bucket[1m])))"),
        Recording("taxi_serve:trips:rate1m",
                  f"sum by ({KEEP}, track, model_version) (rate(taxi_trips_predicted_total[1m]))"),
        Recording("taxi_serve:feature_fallbacks:ratio_rate5m",
                  _ratio("rate(taxi_feature_fallbacks_total[5m])",
                         "rate(taxi_trips_predicted_total[5m])", by)),
        # Rolling MAE over the champion's offline MAE on its evaluation month: 1 = as good
        # as promised offline. The offline gauge is per version, whatever track serves it.
        Recording("taxi_serve:rolling_mae_1h:ratio_offline",
                  f'max by ({KEEP}, model_version, track, target) (taxi_rolling_mae{{window="1h"}})'
                  f" / on ({KEEP}, model_version, target) group_left max by "
                  f"({KEEP}, model_version, target) (taxi_model_offline_mae)"),
        # How many features are below the drift p-value threshold right now (0 when none).
        Recording("taxi_serve:drift_features_below_threshold:count",
                  f"sum by ({KEEP}, model_version) (taxi_drift_feature_p_value < bool on "
                  f"({KEEP}) group_left taxi_drift_p_value_threshold)"),
    ]
    return rules


def _alerts() -> list[Alert]:
    budget = round(1 - SLO_TARGET, 6)
    where = "{{ $labels.namespace }}/{{ $labels.app_kubernetes_io_instance }}"
    slo = "taxi_serve:latency_slo_violations:ratio_rate"
    return [
        Alert("TaxiServeTargetDown", 'up{app_kubernetes_io_part_of="taxi-serve"} == 0', "5m",
              "critical", "taxi-serve target {{ $labels.instance }} is down",
              "Prometheus has not scraped {{ $labels.app_kubernetes_io_component }} "
              "{{ $labels.instance }} for 5 minutes."),
        # Multi-window burn rates (Google SRE workbook): 14.4x burns 2 % of a 30-day budget in
        # an hour, 6x burns 5 % in six hours; the short window stops the page once it recovers.
        Alert("TaxiServeLatencySLOFastBurn",
              f"{slo}1h > {14.4 * budget:g} and {slo}5m > {14.4 * budget:g}", "2m", "critical",
              f"{where} track {{{{ $labels.track }}}} burns its latency SLO budget fast",
              f"More than {14.4 * budget:.1%} of requests took over {SLO_LATENCY_LE} s in the "
              "last hour (SLO: 99 % within 50 ms)."),
        Alert("TaxiServeLatencySLOSlowBurn",
              f"{slo}6h > {6 * budget:g} and {slo}30m > {6 * budget:g}", "15m", "warning",
              f"{where} track {{{{ $labels.track }}}} burns its latency SLO budget",
              f"More than {6 * budget:.0%} of requests took over {SLO_LATENCY_LE} s in the "
              "last six hours (SLO: 99 % within 50 ms)."),
        Alert("TaxiServeHighErrorRate", "taxi_serve:request_errors:ratio_rate5m > 0.01", "5m",
              "critical", f"{where} track {{{{ $labels.track }}}}: more than 1 % of requests fail",
              "Server-side error ratio is {{ $value | humanizePercentage }} over 5 minutes."),
        Alert("TaxiServeFeatureFallbackActive",
              "taxi_serve:feature_fallbacks:ratio_rate5m > 0", "5m", "warning",
              f"{where} track {{{{ $labels.track }}}} answers from fallback features",
              "{{ $value | humanizePercentage }} of trips are predicted without online "
              "features (Redis failing or circuit open); answers carry degraded flags."),
        Alert("TaxiServeDriftDetected",
              f'max by ({KEEP}, model_version) (taxi_drift_detected{{kind="any"}}) == 1', "30m",
              "warning", f"{where} model {{{{ $labels.model_version }}}} sees drifted inputs",
              "The drift monitor has reported drift (features or predictions) for 30 minutes; "
              "see the drift dashboard for which features."),
        Alert("TaxiServeAccuracyBelowOfflineBaseline",
              "taxi_serve:rolling_mae_1h:ratio_offline > 1.25 and on "
              f"({KEEP}, model_version, track, target) max by ({KEEP}, model_version, track, "
              'target) (taxi_rolling_feedback_samples{window="1h"}) >= 50', "30m", "warning",
              f"{where} model {{{{ $labels.model_version }}}} ({{{{ $labels.track }}}}) "
              "{{ $labels.target }} MAE is worse than its offline baseline",
              "Rolling 1 h MAE is {{ $value | humanize }}x the MAE the model had on its "
              "evaluation month (with at least 50 feedback samples)."),
        Alert("TaxiServeRetrainFailed",
              f'max by ({KEEP}) (taxi_retrain_last_run_timestamp_seconds{{outcome="failed"}}) > 0',
              "0m", "warning", f"{where}: the last retrain job failed",
              "The retrain job's last run ended with outcome=failed; the champion keeps "
              "serving. Check the retrain CronJob's logs."),
        Alert("TaxiServeModelTooOld",
              f"time() - max by ({KEEP}, model_version, track) "
              f"(taxi_model_created_timestamp_seconds) > {MODEL_MAX_AGE_DAYS * 86400}", "1h",
              "warning", f"{where} model {{{{ $labels.model_version }}}} is old",
              f"The model serving track {{{{ $labels.track }}}} was trained more than "
              f"{MODEL_MAX_AGE_DAYS} days ago."),
    ]


RECORDINGS = _recordings()
ALERTS = _alerts()

_HEADER = """\
# GENERATED by `python -m grafana generate` from grafana/rules.py: do not edit by hand.
# Loaded as a rule file by the k8s/ dev Prometheus and as the spec of the chart's
# PrometheusRule; both copies are byte-identical (tests check, and fail when stale).
# Series carry namespace, app_kubernetes_io_instance (the release), app_kubernetes_io_component
# and taxi_serve_io_track from pod relabelling; the service adds track and model_version.
"""


def render() -> str:
    """The rule file's text."""
    groups = [
        {"name": "taxi-serve.recording", "rules": [
            {"record": r.record, "expr": r.expr} for r in RECORDINGS]},
        {"name": "taxi-serve.alerts", "rules": [
            {"alert": a.alert, "expr": a.expr, "for": a.for_,
             "labels": {"severity": a.severity, **a.labels},
             "annotations": {"summary": a.summary, "description": a.description}}
            for a in ALERTS]},
    ]
    return _HEADER + yaml.safe_dump({"groups": groups}, sort_keys=False, width=100)
