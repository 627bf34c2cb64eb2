"""The evaluation loop: read windows, test each served version, export and store verdicts."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass

import redis
from prometheus_client import CollectorRegistry

from drift_monitor.detector import Verdict, VersionDetector, load_reference
from drift_monitor.metrics import DriftMetrics, RetrainStateCollector
from drift_monitor.settings import DriftSettings
from drift_monitor.window import decode, newest_entries, raw_stream_client, read_model_columns

log = logging.getLogger(__name__)
VERDICT_KEY = "taxi:drift:verdict"


@dataclass
class Health:
    """What ``/healthz`` reports: healthy = the loop has run and its last Redis access worked
    and the loop finished an iteration recently (it is not stuck)."""

    loop_started: bool = False
    redis_ok: bool = False
    last_tick: float = 0.0
    last_error: str = ""

    def status(self, stale_after_s: float) -> tuple[bool, dict]:
        """(healthy, details) for ``/healthz``."""
        age = time.time() - self.last_tick if self.last_tick else None
        fresh = age is not None and age <= stale_after_s
        healthy = self.loop_started and self.redis_ok and fresh
        return healthy, {"healthy": healthy, "loop_started": self.loop_started,
                         "redis_ok": self.redis_ok, "seconds_since_tick": age,
                         "last_error": self.last_error}


class Monitor:
    """Holds the Redis client, one cached detector per model version and the metrics."""

    def __init__(self, settings: DriftSettings, registry: CollectorRegistry | None = None):
        if not settings.redis_url:
            raise ValueError("REDIS_URL is not set")
        self.settings = settings
        self.client = redis.Redis.from_url(settings.redis_url,
                                           socket_timeout=settings.redis_timeout_s,
                                           socket_connect_timeout=settings.redis_timeout_s)
        self.stream_client = raw_stream_client(self.client)
        self.registry = registry or CollectorRegistry()
        self.metrics = DriftMetrics(self.registry, settings.p_value)
        self.registry.register(RetrainStateCollector(self.client))
        self.health = Health()
        self.detectors: dict[str, VersionDetector] = {}
        self._stop = threading.Event()

    def detector(self, version: str) -> VersionDetector:
        """The cached detector of ``version``; fitted on its reference the first time."""
        found = self.detectors.get(version)
        if found is None:
            s = self.settings
            cols = read_model_columns(self.client, version)
            ignore = set(s.ignore_features)
            if s.feature_scope == "request":
                ignore |= set(cols.store_features)
            found = VersionDetector(
                version, load_reference(s.reference_for(version)), cols.columns,
                set(cols.categorical) | set(s.extra_categorical), ignore=ignore,
                p_value=s.p_value, correction=s.correction,
                min_category_count=s.min_category_count)
            self.detectors[version] = found
        return found

    def evaluate_once(self) -> list[Verdict]:
        """Evaluate every version seen in the newest ``scan_entries`` entries.

        Redis errors propagate (the whole evaluation failed); a version whose reference or
        model hash is unusable is counted as an error and skipped.
        """
        s = self.settings
        groups = newest_entries(self.stream_client, s.scan_entries)
        verdicts = []
        for version, entries in sorted(groups.items()):
            if len(entries) < s.min_window:
                self.metrics.evaluations.labels("insufficient_data").inc()
                log.info("version %s: %d entries < min_window %d", version, len(entries),
                         s.min_window)
                continue
            try:
                det = self.detector(version)
                window = decode(version, entries, read_model_columns(self.client, version),
                                s.window_size, s.window_sampling)
                if len(window) < s.min_window:
                    self.metrics.evaluations.labels("insufficient_data").inc()
                    continue
                verdict = det.evaluate(window.x, window.predictions)
            except ValueError as exc:  # bad reference / model hash: this version only
                self.metrics.evaluations.labels("error").inc()
                self.health.last_error = f"{version}: {exc}"
                log.error("version %s not evaluated: %s", version, exc)
                continue
            self._store(verdict)
            self.metrics.record(verdict)
            verdicts.append(verdict)
        self.metrics.forget_except(set(groups))
        for gone in set(self.detectors) - set(groups):  # no longer served: free its reference
            del self.detectors[gone]
        return verdicts

    def _store(self, verdict: Verdict) -> None:
        doc = json.dumps(verdict.to_json(), sort_keys=True)
        self.client.pipeline(transaction=False).set(VERDICT_KEY, doc).set(
            f"{VERDICT_KEY}:{verdict.model_version}", doc).execute()

    def tick(self) -> None:
        """One loop iteration: evaluate, and record in ``health`` whether Redis worked."""
        try:
            self.client.ping()
            self.evaluate_once()
            self.health.redis_ok = True
            self.health.last_error = ""
        except redis.RedisError as exc:
            self.metrics.evaluations.labels("error").inc()
            self.health.redis_ok = False
            self.health.last_error = f"redis: {exc}"
            log.error("evaluation failed, Redis unreachable: %s", exc)
        except Exception as exc:  # keep the monitor alive; the error is counted and reported
            self.metrics.evaluations.labels("error").inc()
            self.health.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("evaluation failed")
        self.health.last_tick = time.time()

    def run(self) -> None:
        """Evaluate every ``interval_s`` seconds until ``stop()``."""
        self.health.loop_started = True
        while not self._stop.is_set():
            started = time.monotonic()
            self.tick()
            self._stop.wait(max(0.0, self.settings.interval_s - (time.monotonic() - started)))

    def stop(self) -> None:
        """Ask ``run`` to return after the current iteration."""
        self._stop.set()
