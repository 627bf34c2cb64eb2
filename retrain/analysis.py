"""Canary analysis: canary against stable in Prometheus (HTTP API through httpx).

Three checks over the last ``analysis_window``: the 5xx rate, the p99 latency of prediction
requests, and the rolling feedback MAE of each track when both have enough feedback samples.
Thresholds are settings; the verdict carries every number it looked at.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import httpx

from retrain.settings import RetrainSettings

PREDICT = 'endpoint=~".*predict.*"'


@dataclass
class TrackStats:
    """What Prometheus says about one track over the window (None = no data)."""

    requests: float | None = None
    error_rate: float | None = None
    p99_s: float | None = None
    mae_fare: float | None = None
    mae_samples: float | None = None


@dataclass
class Verdict:
    passed: bool
    reasons: list[str]
    canary: TrackStats
    stable: TrackStats
    checks: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


class Prometheus:
    """Instant queries against the Prometheus HTTP API."""

    def __init__(self, url: str, timeout: float = 10.0):
        self.http = httpx.Client(base_url=url.rstrip("/"), timeout=timeout)

    def scalar(self, query: str) -> float | None:
        """The single value of an instant query, None when it returns nothing or NaN."""
        resp = self.http.get("/api/v1/query", params={"query": query})
        resp.raise_for_status()
        body = resp.json()
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus query failed: {body}")
        result = body["data"]["result"]
        if not result:
            return None
        value = float(result[0]["value"][1])
        return None if math.isnan(value) else value

    def track(self, track: str, version: str | None, window: str, mae_window: str = "15m") \
            -> TrackStats:
        sel = f'track="{track}"' + (f',model_version="{version}"' if version else "")
        reqs = f"taxi_requests_total{{{sel},{PREDICT}}}"
        total = self.scalar(f"sum(increase({reqs}[{window}]))")
        errors = self.scalar(
            f'sum(increase(taxi_requests_total{{{sel},{PREDICT},status="5xx"}}[{window}]))')
        p99 = self.scalar(
            "histogram_quantile(0.99, sum by (le) (rate("
            f"taxi_request_duration_seconds_bucket{{{sel},{PREDICT}}}[{window}])))")
        mae = self.scalar(f'max(taxi_rolling_mae{{{sel},target="fare",window="{mae_window}"}})')
        n = self.scalar(
            f'max(taxi_rolling_feedback_samples{{{sel},target="fare",window="{mae_window}"}})')
        rate = None if not total else (errors or 0.0) / total
        return TrackStats(total, rate, p99, mae, n)


def judge(canary: TrackStats, stable: TrackStats, cfg: RetrainSettings) -> Verdict:
    """Compare the tracks. Pure: the analysis math is unit-tested on its own."""
    reasons: list[str] = []
    checks: dict = {}
    if canary.requests is None or canary.requests < cfg.min_requests:
        reasons.append(f"too few canary requests to judge ({canary.requests or 0:.0f} < "
                       f"{cfg.min_requests})")
        return Verdict(False, reasons, canary, stable, {"requests": "insufficient"})
    stable_err = stable.error_rate or 0.0
    canary_err = canary.error_rate or 0.0
    checks["error_rate"] = canary_err <= stable_err + cfg.max_error_rate_delta
    if not checks["error_rate"]:
        reasons.append(f"canary error rate {canary_err:.2%} > stable {stable_err:.2%} + "
                       f"{cfg.max_error_rate_delta:.2%}")
    if canary.p99_s is None:
        checks["p99"] = False
        reasons.append("no canary latency histogram")
    elif canary.p99_s <= cfg.p99_floor_s:
        checks["p99"] = True  # below the noise floor: bucket edges, not a regression
    elif stable.p99_s is None:
        checks["p99"] = False
        reasons.append(f"canary p99 {canary.p99_s * 1000:.1f} ms above the "
                       f"{cfg.p99_floor_s * 1000:.0f} ms floor and no stable p99 to compare")
    else:
        limit = max(stable.p99_s * cfg.max_p99_ratio, cfg.p99_floor_s)
        checks["p99"] = canary.p99_s <= limit
        if not checks["p99"]:
            reasons.append(f"canary p99 {canary.p99_s * 1000:.1f} ms > {limit * 1000:.1f} ms "
                           f"({cfg.max_p99_ratio} x stable {stable.p99_s * 1000:.1f} ms)")
    enough = all((t.mae_samples or 0) >= cfg.min_feedback and t.mae_fare is not None
                 for t in (canary, stable))
    if enough:
        limit = stable.mae_fare * cfg.max_mae_ratio
        checks["mae"] = canary.mae_fare <= limit
        if not checks["mae"]:
            reasons.append(f"canary fare MAE {canary.mae_fare:.3f} > {limit:.3f} "
                           f"({cfg.max_mae_ratio} x stable {stable.mae_fare:.3f})")
    else:
        checks["mae"] = "not enough feedback"
    passed = not reasons
    if passed:
        reasons.append("canary within thresholds: " + ", ".join(
            f"{k}={'ok' if v is True else v}" for k, v in checks.items()))
    return Verdict(passed, reasons, canary, stable, checks)


def analyse(cfg: RetrainSettings, canary_version: str | None, stable_version: str | None) \
        -> Verdict:
    """Query Prometheus for both tracks and judge them."""
    prom = Prometheus(cfg.prometheus_url)
    canary = prom.track("canary", canary_version, cfg.analysis_window)
    stable = prom.track("stable", stable_version, cfg.analysis_window)
    return judge(canary, stable, cfg)
