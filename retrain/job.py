"""The whole run: lease -> recover a dead run -> decide -> retrain -> gate -> build -> roll out
-> audit. Each failure ends the run with the serving version untouched and says why."""

from __future__ import annotations

import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import redis

from retrain.audit import Audit, log_json
from retrain.settings import RetrainSettings


@dataclass
class Context:
    """What every step needs; built once per command."""

    cfg: RetrainSettings
    rdb: redis.Redis
    audit: Audit
    kube: object | None = None
    helm: object | None = None
    extras: dict = field(default_factory=dict)

    @property
    def work_dir(self) -> Path:
        return self.cfg.artifacts_dir / "retrain" / self.audit.run_id


def context(cfg: RetrainSettings, dry_run: bool) -> Context:
    """Connect to Redis, and to Kubernetes and Helm when the job has a namespace."""
    if not cfg.redis_url:
        raise SystemExit("REDIS_URL is required: the job reads feedback and drift from it")
    rdb = redis.Redis.from_url(cfg.redis_url)
    ns = cfg.k8s_namespace()
    kube = helm = None
    if ns:
        from retrain.helm import Helm
        from retrain.kube import Kube

        kube = Kube(ns, cfg.helm_release, cfg.lease_name,
                    str(cfg.kubeconfig) if cfg.kubeconfig else None)
        helm = Helm(cfg, ns)
    return Context(cfg, rdb, Audit(rdb, kube, dry_run), kube, helm)


def smoke_trips(cfg: RetrainSettings, n: int = 20) -> list[dict]:
    """Known trips of the newest labelled month, as requests (the blue-green smoke test)."""
    from retrain.retrain import trailing_window
    from retrain.trips import as_requests, known_trips

    newest = trailing_window(cfg.data, 1)[-1]
    return as_requests(known_trips(newest, n, seed=1), "smoke")


@contextmanager
def lease(ctx: Context):
    """Hold the release's Lease for the block (no-op without Kubernetes or on a dry run).
    Yields False when another run holds it: the caller must not touch the release."""
    if ctx.kube is None or ctx.audit.dry_run:
        yield True
        return
    from retrain.kube import LeaseBusy

    try:
        ctx.kube.acquire(ctx.audit.run_id, ctx.cfg.lease_duration_s)
    except LeaseBusy as exc:
        log_json("lease-busy", reason=str(exc), run_id=ctx.audit.run_id)
        yield False
        return
    ctx.audit.step("lease", reason=f"holding Lease {ctx.cfg.lease_name}")
    try:
        yield True
    finally:
        ctx.kube.release_lease()


def run(ctx: Context, force: bool = False) -> dict:
    """One full run under the Lease. Returns the audit record."""
    with lease(ctx) as held:
        if not held:
            return {"outcome": "busy", "reasons": ["another run holds the Lease"]}
        return _run(ctx, force)


def _run(ctx: Context, force: bool) -> dict:
    """One full run. Returns the audit record."""
    from retrain.decide import decide, gather
    from retrain.retrain import build, gate, retrain
    from training.register import current_champion, set_champion

    cfg, audit, dry = ctx.cfg, ctx.audit, ctx.audit.dry_run
    champion = current_champion()
    if ctx.helm:
        from retrain.rollout import Rollout

        ro = Rollout(cfg, ctx.helm, audit, ctx.rdb, dry)
        recovered = ro.recover()
        if recovered:
            audit.step("recover", ok=recovered.outcome == "promoted",
                       reason=recovered.reason, revision=recovered.revision)
            if not dry:
                ctx.rdb.hincrby("taxi:retrain:outcomes", recovered.outcome, 1)
        ro.scale_down_expired_idle()
    decision = decide(gather(ctx.rdb, champion, cfg), cfg, force)
    audit.step("decide", ok=True, reason="; ".join(decision.reasons),
               retrain=decision.retrain, evidence=decision.as_dict()["evidence"])
    if not decision.retrain:
        return audit.finish("skipped", decision.reasons, None, champion,
                            decision.as_dict()["evidence"])
    if dry:
        audit.step("retrain", reason="dry run: would retrain", window=[
            str(p) for p in _window(cfg)])
        return audit.finish("skipped", ["dry run"] + decision.reasons, None, champion)
    metrics: dict = {"decision": decision.as_dict()["evidence"]}
    try:
        cand = retrain(cfg, cfg.redis_url, ctx.work_dir)
    except Exception as exc:  # noqa: BLE001 - any training failure ends the run the same way
        return _failed(ctx, "retrain", exc, decision.reasons, None, champion, metrics)
    audit.step("retrain", reason=f"trained {cand.tag}", window=cand.window,
               evaluation=cand.evaluation)
    window = pd.read_parquet(cand.gate_window)
    result = gate(cand.tag, champion, window, cfg.gate_margin, cfg.gate_tolerance)
    metrics["gate"] = result.mae
    audit.step("gate", ok=result.passed, reason=result.reason, mae=result.mae)
    if not result.passed:
        return audit.finish("rejected", decision.reasons + [result.reason], cand.tag,
                            champion, metrics)
    try:
        built = build(cand.tag, window, cfg.compile)
    except Exception as exc:  # noqa: BLE001
        return _failed(ctx, "build", exc, decision.reasons, cand.tag, champion, metrics)
    audit.step("build", reason=f"{cand.tag} in the model store", **built)
    if cfg.rollout == "none" or ctx.helm is None:
        return audit.finish("built", decision.reasons + [result.reason,
                            "no rollout target: candidate built, serving untouched"],
                            cand.tag, champion, metrics)
    try:
        rolled = ro.run(cand.tag, smoke_trips(cfg))
    except Exception as exc:  # noqa: BLE001
        _revert_after_error(ro, audit)
        return _failed(ctx, "rollout", exc, decision.reasons, cand.tag, champion, metrics)
    metrics["rollout"] = rolled.metrics
    if rolled.outcome == "promoted":
        set_champion(cand.tag, f"retrain {audit.run_id}: {rolled.reason}")
    return audit.finish(rolled.outcome, decision.reasons + [result.reason, rolled.reason],
                        cand.tag, champion, metrics, rolled.revision)


def _window(cfg: RetrainSettings) -> list[Path]:
    from retrain.retrain import trailing_window

    return trailing_window(cfg.data, cfg.window_months)


def _revert_after_error(ro, audit: Audit) -> None:
    """An exception mid-rollout: revert as a dead run would be reverted."""
    from retrain.audit import write_state

    write_state(ro.rdb, ro.dry, run_id=f"{audit.run_id}-error")
    try:
        res = ro.recover()
        if res:
            audit.step("recover", ok=False, reason=res.reason, revision=res.revision)
    except Exception as exc:  # noqa: BLE001 - the next run recovers from the state
        audit.step("recover", ok=False, reason=f"revert failed, next run retries: {exc!r}")


def _failed(ctx: Context, step: str, exc: Exception, reasons, candidate, champion, metrics):
    ctx.audit.step(step, ok=False, reason=f"{type(exc).__name__}: {exc}"[:1000],
                   traceback=traceback.format_exc()[-3000:])
    return ctx.audit.finish("failed", list(reasons) + [f"{step} failed: {exc}"[:500]],
                            candidate, champion, metrics)
