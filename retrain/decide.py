"""Step 1, decide: should the champion be retrained now, and why?

Triggers (any one fires a retrain): the drift monitor's verdict for the champion says drift;
the champion's rolling feedback MAE (from the ``taxi:acc`` buckets the service writes) exceeds
``mae_ratio`` x its offline MAE, once there are enough feedback samples; the champion is older
than ``max_age_days``; or there is no champion at all. ``--force`` retrains regardless.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field

import redis

from retrain.settings import RetrainSettings
from service.accuracy import window_minutes

TARGETS = ("duration", "fare")


@dataclass
class Accuracy:
    """Rolling feedback MAE of one model version and target, over all its tracks."""

    mae: float | None
    n: int


@dataclass
class Evidence:
    """Everything the decision looks at (recorded with it)."""

    champion: str | None
    drift: dict | None = None
    accuracy: dict[str, Accuracy] = field(default_factory=dict)
    offline_mae: dict[str, float] = field(default_factory=dict)
    created_at: float | None = None


@dataclass
class Decision:
    retrain: bool
    reasons: list[str]
    evidence: Evidence

    def as_dict(self) -> dict:
        return asdict(self)


def rolling_accuracy(rdb: redis.Redis, version: str, target: str, window_s: int,
                     now: float | None = None) -> Accuracy:
    """Sum the per-minute buckets ``taxi:acc:<version>:<track>:<target>:<minute>`` of the last
    ``window_s`` seconds over every track (the champion may serve as stable, blue, main...)."""
    first, _ = window_minutes(window_s, now)  # the window service/accuracy.py reads
    n, total = 0, 0.0
    keys = [k for k in rdb.scan_iter(match=f"taxi:acc:{version}:*:{target}:*", count=1000)]
    keys = [k for k in keys if int(k.rsplit(b":", 1)[1]) >= first]
    if keys:
        pipe = rdb.pipeline()
        for key in keys:
            pipe.hmget(key, "n", "sum")
        for cnt, s in pipe.execute():
            n += int(cnt or 0)
            total += float(s or 0.0)
    return Accuracy(total / n if n else None, n)


def model_facts(rdb: redis.Redis, tag: str) -> tuple[dict[str, float], float | None]:
    """Offline MAE per target (duration in s, fare in USD) and creation time (unix s) of a
    model: ``taxi:model:<version>`` as the service wrote it, else the model's own metadata."""
    version = tag.split(":", 1)[1]
    raw = {k.decode(): v.decode() for k, v in rdb.hgetall(f"taxi:model:{version}").items()}
    offline = {t: float(raw[f"offline_mae_{t}"]) for t in TARGETS if raw.get(f"offline_mae_{t}")}
    created = float(raw["created_at"]) if raw.get("created_at") else None
    if len(offline) < len(TARGETS) or created is None:
        import bentoml

        meta = bentoml.models.get(tag).info.metadata
        best = {t: meta["metrics"][t]["lightgbm+features"]["mae"] for t in TARGETS}
        # training reports duration MAE in minutes; the contract uses seconds
        offline = {"duration": best["duration"] * 60.0, "fare": best["fare"]} | offline
        if created is None:
            from datetime import datetime
            created = datetime.fromisoformat(meta["created_at"]).timestamp()
    return offline, created


def drift_verdict(rdb: redis.Redis, version: str) -> dict | None:
    """The drift monitor's latest verdict for this version (the per-version key, else the
    global one if it is about this version)."""
    for key in (f"taxi:drift:verdict:{version}", "taxi:drift:verdict"):
        raw = rdb.get(key)
        if raw:
            verdict = json.loads(raw)
            if verdict.get("model_version") == version:
                return verdict
    return None


def gather(rdb: redis.Redis, champion: str | None, cfg: RetrainSettings) -> Evidence:
    """Read the evidence for ``champion`` from Redis and the model store."""
    if champion is None:
        return Evidence(None)
    version = champion.split(":", 1)[1]
    offline, created = model_facts(rdb, champion)
    acc = {t: rolling_accuracy(rdb, version, t, cfg.accuracy_window_s) for t in TARGETS}
    return Evidence(champion, drift_verdict(rdb, version), acc, offline, created)


def decide(ev: Evidence, cfg: RetrainSettings, force: bool = False,
           now: float | None = None) -> Decision:
    """Apply the triggers to the evidence. Pure: unit-tested without any service."""
    now = time.time() if now is None else now
    reasons: list[str] = []
    if force:
        reasons.append("forced")
    if ev.champion is None:
        reasons.append("no champion model yet")
        return Decision(True, reasons, ev)
    if cfg.retrain_on_drift and ev.drift and ev.drift.get("drift"):
        feats = ", ".join(ev.drift.get("drifted_features") or []) or "predictions"
        reasons.append(f"drift detected ({feats})")
    for target in TARGETS:
        acc, offline = ev.accuracy.get(target), ev.offline_mae.get(target)
        if acc is None or acc.mae is None or offline is None or acc.n < cfg.min_feedback:
            continue
        if acc.mae > cfg.mae_ratio * offline:
            reasons.append(f"{target} feedback MAE {acc.mae:.3f} over {acc.n} trips > "
                           f"{cfg.mae_ratio} x offline MAE {offline:.3f}")
    if ev.created_at is not None:
        age_days = (now - ev.created_at) / 86400.0
        if age_days > cfg.max_age_days:
            reasons.append(f"champion is {age_days:.1f} days old (> {cfg.max_age_days})")
    if not reasons:
        summary = ", ".join(f"{t} feedback MAE {a.mae if a.mae is None else round(a.mae, 3)} "
                            f"(n={a.n})" for t, a in ev.accuracy.items())
        return Decision(False, [f"no trigger fired: {summary or 'no feedback'}"], ev)
    return Decision(True, reasons, ev)
