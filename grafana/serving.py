"""The serving dashboard: traffic, latency, errors, online features and saturation."""

from grafana.rules import ERROR_STATUS
from grafana.spec import SEL, Dashboard, Panel, Query, Row

BUCKETS = "taxi_serve:request_duration_seconds_bucket:rate1m"
RI = "$__rate_interval"


def _quantile(q: str, by: str) -> str:
    return f"histogram_quantile({q}, sum by (le, {by}) ({BUCKETS}{{{SEL}}}))"


SERVING = Dashboard(
    uid="taxi-serve-serving",
    title="taxi-serve / Serving",
    description="Prediction traffic, latency by protocol/endpoint/track/model version, errors, "
                "online feature fetches, fallbacks and saturation.",
    rows=(
        Row("Overview", (
            Panel("Requests/s", "stat", (Query(f"sum(taxi_serve:requests:rate1m{{{SEL}}})"),),
                  unit="reqps", width=6, height=4),
            Panel("p99 latency", "stat", (Query(_quantile("0.99", "namespace")),),
                  unit="s", width=6, height=4, thresholds=((0.025, "orange"), (0.05, "red"))),
            Panel("Server error ratio", "stat",
                  (Query(f"max(taxi_serve:request_errors:ratio_rate5m{{{SEL}}})"),),
                  unit="percentunit", width=6, height=4, thresholds=((0.01, "red"),)),
            Panel("Fallback ratio", "stat",
                  (Query(f"max(taxi_serve:feature_fallbacks:ratio_rate5m{{{SEL}}})"),),
                  unit="percentunit", width=6, height=4, thresholds=((0.001, "orange"),)),
        )),
        Row("Traffic", (
            Panel("Request rate by protocol and endpoint", "timeseries", (Query(
                f"sum by (protocol, endpoint) (taxi_serve:requests:rate1m{{{SEL}}})",
                "{{protocol}} {{endpoint}}"),), unit="reqps"),
            Panel("Trips predicted by track and model version", "timeseries", (Query(
                f"sum by (track, model_version) (taxi_serve:trips:rate1m{{{SEL}}})",
                "{{track}} {{model_version}}"),), unit="short", stacked=True,
                description="A batch request counts each of its trips."),
        )),
        Row("Latency", (
            Panel("Latency p50 / p95 / p99 by protocol", "timeseries", tuple(
                Query(_quantile(q, "protocol"), f"p{round(float(q) * 100)} {{{{protocol}}}}")
                for q in ("0.5", "0.95", "0.99")), unit="s",
                thresholds=((0.05, "red"),)),
            Panel("p99 latency by endpoint", "timeseries", (Query(
                _quantile("0.99", "protocol, endpoint"), "{{protocol}} {{endpoint}}"),),
                unit="s"),
            Panel("p99 latency by track and model version", "timeseries", (Query(
                _quantile("0.99", "track, model_version"), "{{track}} {{model_version}}"),),
                unit="s"),
            Panel("Latency distribution", "heatmap", (Query(
                f"sum by (le) (increase(taxi_request_duration_seconds_bucket{{{SEL}}}[{RI}]))",
                "{{le}}"),), unit="s"),
            Panel("Latency SLO: share of requests slower than 50 ms", "timeseries", tuple(
                Query(f"max by (track) (taxi_serve:latency_slo_violations:ratio_rate{w}"
                      f"{{{SEL}}})", f"{{{{track}}}} {w}")
                for w in ("5m", "30m", "1h", "6h")), unit="percentunit",
                thresholds=((0.01, "red"),),
                description="SLO: 99 % within 50 ms. Burn rate = this ratio / 1 %; the alerts "
                            "fire at 14.4x (1 h and 5 m) and 6x (6 h and 30 m)."),
        )),
        Row("Errors", (
            Panel("Server error ratio by track", "timeseries", (Query(
                f"taxi_serve:request_errors:ratio_rate5m{{{SEL}}}", "{{track}}"),),
                unit="percentunit", thresholds=((0.01, "red"),),
                description=f"Status {ERROR_STATUS} over all requests."),
            Panel("Non-success answers by protocol, endpoint and status", "timeseries", (Query(
                f'sum by (protocol, endpoint, status) (taxi_serve:requests:rate1m{{{SEL}, '
                f'status!~"2xx|ok"}})', "{{protocol}} {{endpoint}} {{status}}"),),
                unit="reqps", description="Client errors (4xx, invalid_argument) included."),
        )),
        Row("Online features", (
            Panel("Feature fetch latency by source", "timeseries", (
                Query(f"taxi_serve:feature_fetch_duration_seconds:p99_1m{{{SEL}}}",
                      "p99 {{source}}"),
                Query("histogram_quantile(0.5, sum by (le, source) (rate("
                      f"taxi_feature_fetch_duration_seconds_bucket{{{SEL}}}[{RI}])))",
                      "p50 {{source}}")), unit="s"),
            Panel("Fallback ratio by track", "timeseries", (Query(
                f"taxi_serve:feature_fallbacks:ratio_rate5m{{{SEL}}}", "{{track}}"),),
                unit="percentunit", thresholds=((0.001, "orange"),),
                description="Trips answered from the fallback snapshot (Redis failing or the "
                            "circuit breaker open)."),
        )),
        Row("Saturation", (
            Panel("Requests in flight (BentoML)", "timeseries", (Query(
                "sum by (taxi_serve_io_track) "
                f"(bentoml_service_request_in_progress{{{SEL}}})",
                "{{taxi_serve_io_track}}"),),
                unit="short", width=8),
            Panel("BentoML HTTP p99 latency", "timeseries", (Query(
                "histogram_quantile(0.99, sum by (le, endpoint) (rate("
                f"bentoml_service_request_duration_seconds_bucket{{{SEL}}}[{RI}])))",
                "{{endpoint}}"),), unit="s", width=8,
                description="Latency as BentoML's ASGI layer sees it (includes "
                            "serialisation)."),
            Panel("Prediction log writes and drops", "timeseries", (Query(
                f"sum by (result) (rate(taxi_prediction_log_total{{{SEL}}}[{RI}]))",
                "{{result}}"),), unit="short", width=8,
                description="dropped_buffer_full means the flusher cannot keep up."),
        )),
    ),
)
