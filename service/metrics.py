"""Every Prometheus metric the service exports, in one place (see docs/metrics.md).

Labels stay low-cardinality: protocol, endpoint, status class, model version and track.
Inside a BentoML worker, prometheus-client runs in multiprocess mode (BentoML sets
PROMETHEUS_MULTIPROC_DIR) and BentoML's /metrics exports these beside its own.
"""

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
PREDLOG = Counter("taxi_prediction_log", "Predicted trips by prediction-log outcome "
                  "(written, dropped_buffer_full, dropped_redis_error)", ["result"])
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
MODEL_CREATED = Gauge("taxi_model_created_timestamp_seconds", "When the served model was trained",
                      ["model_version", "track"], multiprocess_mode="mostrecent")
