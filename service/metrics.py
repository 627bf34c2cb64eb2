"""Every Prometheus metric the service exports, in one place (see docs/metrics.md).

Labels stay low-cardinality: protocol, endpoint, status class, model version and track.
Inside a BentoML worker, prometheus-client runs in multiprocess mode (BentoML sets
PROMETHEUS_MULTIPROC_DIR) and BentoML's /metrics exports these beside its own.
"""

import numpy as np
from prometheus_client import Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25,
                    0.5, 1.0, 2.5)

REQUEST_LATENCY = Histogram(
    "taxi_request_duration_seconds", "Prediction request latency inside the service",
    ["protocol", "endpoint", "status", "model_version", "track"], buckets=_LATENCY_BUCKETS)
REQUESTS = Counter(
    "taxi_requests", "Prediction requests answered",
    ["protocol", "endpoint", "status", "model_version", "track"])
TRIPS = Counter("taxi_trips_predicted", "Trips predicted (a batch counts each trip)",
                ["model_version", "track"])
FEATURE_FETCH_LATENCY = Histogram(
    "taxi_feature_fetch_duration_seconds", "Online feature fetch latency (one round trip)",
    ["source"], buckets=_LATENCY_BUCKETS)
FALLBACKS = Counter("taxi_feature_fallbacks",
                    "Trips answered from fallback features because Redis failed or the "
                    "circuit breaker was open", ["model_version", "track"])
PREDICTED_DURATION = Histogram(
    "taxi_predicted_duration_seconds", "Predicted trip durations",
    ["model_version", "track"], buckets=(120, 300, 600, 900, 1200, 1800, 2700, 3600, 5400))
PREDICTED_FARE = Histogram(
    "taxi_predicted_fare_usd", "Predicted fares", ["model_version", "track"],
    buckets=(5, 10, 15, 20, 30, 40, 60, 80, 120, 200))
PREDLOG = Counter("taxi_prediction_log", "Predicted trips by prediction-log outcome (written, "
                  "dropped_buffer_full; retried_redis_error: a failed write kept and retried)",
                  ["result"])
FEEDBACK = Counter("taxi_feedback", "Feedback by outcome (accepted, duplicate, unknown_request)",
                   ["result"])
# Every worker computes the same values from Redis: export the most recent one, not a sum.
ROLLING_MAE = Gauge("taxi_rolling_mae", "Rolling MAE from feedback (duration: s, fare: USD)",
                    ["model_version", "track", "target", "window"],
                    multiprocess_mode="mostrecent")
ROLLING_SAMPLES = Gauge("taxi_rolling_feedback_samples", "Feedback samples behind taxi_rolling_mae",
                        ["model_version", "track", "target", "window"],
                        multiprocess_mode="mostrecent")
OFFLINE_MAE = Gauge("taxi_model_offline_mae", "The served model's MAE on its evaluation month "
                    "(duration: s, fare: USD)", ["model_version", "track", "target"],
                    multiprocess_mode="mostrecent")
MODEL_COMPILED = Gauge("taxi_model_compiled", "1 when the served model runs its compiled trees, "
                       "0 when it fell back to LightGBM (slower)", ["model_version", "track"],
                       multiprocess_mode="mostrecent")
MODEL_CREATED = Gauge("taxi_model_created_timestamp_seconds", "When the served model was trained",
                      ["model_version", "track"], multiprocess_mode="mostrecent")


class PredictorMetrics:
    """The predictor's metric children for one model version and track, looked up once
    (``labels()`` costs a lock and a dict lookup per call; a request makes several)."""

    def __init__(self, labels: dict, engine: str = "lightgbm"):
        MODEL_COMPILED.labels(**labels).set(1 if engine == "compiled" else 0)
        self._fetch = {True: FEATURE_FETCH_LATENCY.labels("redis"),
                       False: FEATURE_FETCH_LATENCY.labels("fallback")}
        self._trips, self._fallbacks = TRIPS.labels(**labels), FALLBACKS.labels(**labels)
        self._duration = PREDICTED_DURATION.labels(**labels)
        self._fare = PREDICTED_FARE.labels(**labels)

    def fetched(self, online: bool, seconds: float) -> None:
        self._fetch[online].observe(seconds)

    def predicted(self, n: int, online: bool, durations, fares) -> None:
        """Count ``n`` answered trips and record their predicted values."""
        self._trips.inc(n)
        if not online:
            self._fallbacks.inc(n)
        observe_many(self._duration, durations)
        observe_many(self._fare, fares)


def observe_many(child, values: np.ndarray) -> None:
    """``child.observe(v)`` for every value, with one increment per bucket instead of one
    per value (a 100-trip batch made 200 locked writes to the multiprocess files, ~0.7 ms).
    Relies on prometheus-client's Histogram internals (``_upper_bounds``, ``_buckets``,
    ``_sum``; tests/unit/test_metrics.py checks it matches ``observe``); without them it
    observes one value at a time."""
    values = np.asarray(values, dtype="float64")
    bounds = getattr(child, "_upper_bounds", None)
    if len(values) < 4 or bounds is None or not hasattr(child, "_buckets"):
        for value in values.tolist():
            child.observe(value)
        return
    values = values[~np.isnan(values)]
    counts = np.bincount(np.searchsorted(bounds, values, side="left"), minlength=len(bounds))
    child._sum.inc(float(values.sum()))
    for i, count in enumerate(counts.tolist()):
        if count:
            child._buckets[i].inc(count)


class RequestMetrics:
    """Latency and count children per (protocol, endpoint, status), created on first use."""

    def __init__(self, labels: dict):
        self.labels, self._children = labels, {}

    def observe(self, protocol: str, endpoint: str, status: str, seconds: float) -> None:
        key = (protocol, endpoint, status)
        children = self._children.get(key)
        if children is None:
            labels = dict(protocol=protocol, endpoint=endpoint, status=status, **self.labels)
            children = self._children[key] = (REQUEST_LATENCY.labels(**labels),
                                              REQUESTS.labels(**labels))
        children[0].observe(seconds)
        children[1].inc()
