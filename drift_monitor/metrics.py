"""Prometheus metrics of the drift monitor (names and labels: docs/monitoring.md).

Drift metrics are set by the evaluation loop. The retrain and rollout state is read from Redis
at scrape time by ``RetrainStateCollector``, so it is never staler than the scrape; absent or
unreadable keys give no samples.
"""

from __future__ import annotations

import json
import logging

import redis
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from drift_monitor.detector import Verdict

log = logging.getLogger(__name__)
RETRAIN_LAST, RETRAIN_OUTCOMES, ROLLOUT_STATE = (
    "taxi:retrain:last", "taxi:retrain:outcomes", "taxi:rollout:state")
COLORS = ("blue", "green")


class DriftMetrics:
    """The drift gauges, counters and histogram, in their own registry."""

    def __init__(self, registry: CollectorRegistry, threshold: float):
        self.registry = registry
        v = ["model_version"]
        self.feature_p = Gauge("taxi_drift_feature_p_value", "per-feature drift test p-value",
                               v + ["feature"], registry=registry)
        self.feature_stat = Gauge("taxi_drift_feature_statistic",
                                  "per-feature K-S distance or chi-squared statistic",
                                  v + ["feature"], registry=registry)
        self.pred_p = Gauge("taxi_drift_prediction_p_value", "prediction drift K-S p-value",
                            v + ["target"], registry=registry)
        self.pred_stat = Gauge("taxi_drift_prediction_statistic", "prediction drift K-S distance",
                               v + ["target"], registry=registry)
        self.detected = Gauge("taxi_drift_detected", "1 when the last evaluation found drift",
                              v + ["kind"], registry=registry)
        self.threshold = Gauge("taxi_drift_p_value_threshold",
                               "significance level before multiple-testing correction",
                               registry=registry)
        self.window = Gauge("taxi_drift_window_size", "entries in the last evaluated window",
                            v, registry=registry)
        self.last = Gauge("taxi_drift_last_evaluation_timestamp_seconds",
                          "unix time of the last evaluation", v, registry=registry)
        self.duration = Histogram("taxi_drift_evaluation_duration_seconds",
                                  "time of one window's drift tests (detector fit excluded)",
                                  buckets=(.01, .025, .05, .1, .2, .5, 1, 2.5, 5),
                                  registry=registry)
        self.evaluations = Counter("taxi_drift_evaluations",
                                   "evaluations by result: ok, insufficient_data, error",
                                   ["result"], registry=registry)
        self.threshold.set(threshold)
        for result in ("ok", "insufficient_data", "error"):
            self.evaluations.labels(result)  # export zeros so rate() works from the start
        self._versions: set[str] = set()

    def record(self, verdict: Verdict) -> None:
        """Export one verdict."""
        v = verdict.model_version
        self._versions.add(v)
        for feature, p in verdict.p_values.items():
            self.feature_p.labels(v, feature).set(p)
            self.feature_stat.labels(v, feature).set(verdict.statistics.get(feature, 0.0))
        for target, p in verdict.prediction_p_values.items():
            self.pred_p.labels(v, target).set(p)
            self.pred_stat.labels(v, target).set(verdict.prediction_statistics.get(target, 0.0))
        for kind, flag in (("features", verdict.feature_drift),
                           ("predictions", verdict.prediction_drift), ("any", verdict.drift)):
            self.detected.labels(v, kind).set(int(flag))
        self.window.labels(v).set(verdict.window_size)
        self.last.labels(v).set(verdict.evaluated_at)
        self.duration.observe(verdict.duration_s)
        self.evaluations.labels("ok").inc()

    def forget_except(self, served: set[str]) -> None:
        """Drop the series of versions no longer served (bounded label cardinality)."""
        for gone in self._versions - served:
            for gauge in (self.feature_p, self.feature_stat, self.pred_p, self.pred_stat,
                          self.detected, self.window, self.last):
                for labels in [k for k in _label_sets(gauge) if k[0] == gone]:
                    gauge.remove(*labels)
        self._versions &= served


def _label_sets(gauge: Gauge) -> list[tuple[str, ...]]:
    # prometheus-client has no public listing of a metric's children; collect() gives them.
    names = gauge._labelnames  # read-only; stable across releases
    return [tuple(s.labels[n] for n in names) for m in gauge.collect() for s in m.samples]


class RetrainStateCollector(Collector):
    """Exports the retrain job's and the rollout's state from Redis at scrape time."""

    def __init__(self, client: redis.Redis):
        self.client = client

    def collect(self):
        """Yield the retrain/rollout gauges; keys that are absent or malformed give no samples."""
        try:
            last, outcomes, state = self.client.pipeline(transaction=False).get(
                RETRAIN_LAST).hgetall(RETRAIN_OUTCOMES).get(ROLLOUT_STATE).execute()
        except redis.RedisError as exc:
            log.warning("retrain/rollout state unreadable: %s", exc)
            return
        last_run = GaugeMetricFamily("taxi_retrain_last_run_timestamp_seconds",
                                     "unix time the last retrain run finished", labels=["outcome"])
        doc = _json(last, RETRAIN_LAST)
        when = doc.get("finished_at", doc.get("started_at")) if doc else None
        if doc and "outcome" in doc and _is_number(when):
            last_run.add_metric([str(doc["outcome"])], float(when))
        yield last_run
        counts = GaugeMetricFamily("taxi_retrain_outcomes", "retrain runs by outcome",
                                   labels=["outcome"])
        for outcome, n in (outcomes or {}).items():
            if _is_number(n):
                counts.add_metric([outcome.decode()], float(n))
        yield counts
        rollout = _json(state, ROLLOUT_STATE)
        weight = GaugeMetricFamily("taxi_rollout_canary_weight", "canary traffic weight, 0-100")
        if rollout and _is_number(rollout.get("canary_weight")):
            weight.add_metric([], float(rollout["canary_weight"]))
        yield weight
        color = GaugeMetricFamily("taxi_rollout_active_color", "1 for the active color",
                                  labels=["color"])
        active = rollout.get("active_color") if rollout else None
        if active:
            for name in sorted(set(COLORS) | {str(active)}):
                color.add_metric([name], float(name == active))
        yield color


def _json(raw: bytes | None, key: str) -> dict | None:
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError:
        log.warning("%s is not JSON; ignored", key)
        return None
    return doc if isinstance(doc, dict) else None


def _is_number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True
