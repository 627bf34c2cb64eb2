"""Step 4, roll out through Helm: canary weight steps with analysis, or blue-green with a
smoke test through the preview Service; and recovery of a rollout a dead run left behind.

Progress is written to ``taxi:rollout:state`` before every change (``phase`` = ``rolling``
until the run finishes), so the next run knows what a dead one was doing. Recovery reverts
cleanly: canary weight 0 with the stable tag untouched, or the active color left where Helm
says it is.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx
import numpy as np

from retrain.analysis import analyse
from retrain.audit import Audit, read_state, write_state
from retrain.helm import Helm, strategy_values
from retrain.settings import RetrainSettings

OTHER = {"blue": "green", "green": "blue"}


@dataclass
class RolloutResult:
    outcome: str  # promoted | rolled_back
    reason: str
    revision: int
    metrics: dict


def version(tag: str | None) -> str | None:
    return tag.split(":", 1)[1] if tag and ":" in tag else tag


class Rollout:
    """Rolls one candidate tag out on one release."""

    def __init__(self, cfg: RetrainSettings, helm: Helm, audit: Audit, rdb, dry_run: bool):
        self.cfg, self.helm, self.audit, self.rdb, self.dry = cfg, helm, audit, rdb, dry_run

    def _state(self, **fields) -> dict:
        return write_state(self.rdb, self.dry, run_id=self.audit.run_id, **fields)

    def _upgrade(self, sets: dict, why: str) -> int:
        rev = self.helm.upgrade(sets, f"retrain {self.audit.run_id}: {why}", self.dry)
        self.audit.step("helm-upgrade", reason=why, sets=sets, revision=rev)
        return rev

    def run(self, candidate: str, smoke_trips=None) -> RolloutResult:
        strategy, block = strategy_values(self.helm.values())
        if strategy == "canary":
            return self.canary(candidate, block)
        if strategy == "blueGreen":
            return self.blue_green(candidate, block, smoke_trips)
        raise ValueError(f"strategy {strategy!r}: the job rolls out canary or blueGreen only")

    # -- canary -----------------------------------------------------------------------------
    def canary(self, candidate: str, block: dict) -> RolloutResult:
        stable = block["stable"]["modelTag"]
        self._state(phase="rolling", mode="canary", candidate=candidate, stable_version=
                    version(stable), canary_version=version(candidate), step="canary-tag",
                    canary_weight=0)
        self._upgrade({"rollout.canary.canary.modelTag": candidate, "rollout.canary.weight": 0},
                      f"canary takes {candidate} at weight 0")
        seen = []
        for weight in self.cfg.canary_steps:
            self._upgrade({"rollout.canary.weight": weight}, f"canary weight {weight}")
            self._state(canary_weight=weight, step=f"weight-{weight}")
            if not self.dry:
                time.sleep(self.cfg.pause_s)
            verdict = analyse(self.cfg, version(candidate), version(stable))
            seen.append({"weight": weight, **verdict.as_dict()})
            self.audit.step("analysis", ok=verdict.passed, reason="; ".join(verdict.reasons),
                            weight=weight, canary=verdict.canary.__dict__,
                            stable=verdict.stable.__dict__, checks=verdict.checks)
            if not verdict.passed:
                why = f"rolled back at weight {weight}: {'; '.join(verdict.reasons)}"
                rev = self._upgrade({"rollout.canary.weight": 0}, why)
                self._state(phase="done", canary_weight=0, step="rolled-back")
                return RolloutResult("rolled_back", why, rev, {"analyses": seen})
        rev = self._promote(candidate, f"promote {candidate} to stable")
        return RolloutResult("promoted", f"canary passed {len(seen)} analyses; stable now "
                                         f"{candidate}", rev, {"analyses": seen})

    def _promote(self, candidate: str, why: str) -> int:
        """The stable track takes the candidate, the canary's share goes to 0; returns the
        revision. Two upgrades, so that ready pods answer at every moment. Under a split by pod
        count the canary holds every pod at weight 100: one upgrade setting the stable tag and
        weight 0 scales the canary to zero while the stable pods replacing it still start (the
        real node refused ~5% of connections then). First the stable track takes the tag with
        the canary at half, then the canary's share goes to 0."""
        self._state(step="promoting")
        self._upgrade({"rollout.canary.stable.modelTag": candidate,
                       "rollout.canary.weight": 50},
                      f"stable takes {candidate}; canary at 50 until its pods are ready")
        rev = self._upgrade({"rollout.canary.weight": 0}, why)
        self._state(phase="done", canary_weight=0, stable_version=version(candidate),
                    step="promoted")
        return rev

    # -- blue-green -------------------------------------------------------------------------
    def blue_green(self, candidate: str, block: dict, smoke_trips) -> RolloutResult:
        active = block["activeColor"]
        idle = OTHER[active]
        before = block[idle]["modelTag"]
        self._state(phase="rolling", mode="blueGreen", candidate=candidate, active_color=active,
                    stable_version=version(block[active]["modelTag"]), step="deploy-idle",
                    idle_tag_before=before)
        # a scaled-down idle color must be back at full size before it is previewed
        self._upgrade({f"rollout.blueGreen.{idle}.modelTag": candidate,
                       "rollout.blueGreen.scaleDownIdle": False},
                      f"{idle} (idle) takes {candidate} for preview")
        smoke = smoke_test(self.preview_url(), candidate, smoke_trips, self.cfg)
        self.audit.step("smoke-test", ok=smoke["passed"], reason=smoke["reason"],
                        **{k: v for k, v in smoke.items() if k not in ("passed", "reason")})
        if not smoke["passed"]:
            why = f"smoke test failed, {active} stays active: {smoke['reason']}"
            rev = self._upgrade({f"rollout.blueGreen.{idle}.modelTag": before}, why)
            self._state(phase="done", step="smoke-failed")
            return RolloutResult("rolled_back", why, rev, {"smoke": smoke})
        self._state(step="switching", target_color=idle)
        rev = self._upgrade({"rollout.blueGreen.activeColor": idle},
                            f"switch active {active} -> {idle} ({candidate})")
        self._state(phase="done", step="switched", active_color=idle,
                    stable_version=version(candidate),
                    rollback_until=time.time() + self.cfg.rollback_window_s)
        return RolloutResult("promoted", f"smoke test passed; {idle} active, {active} kept for "
                                         f"{self.cfg.rollback_window_s:.0f} s", rev,
                             {"smoke": smoke})

    def preview_url(self) -> str:
        return self.cfg.preview_url or \
            f"http://{self.cfg.helm_release}-preview.{self.helm.ns}.svc:3000"

    def scale_down_expired_idle(self) -> None:
        """After the rollback window, scale the old color down (the next deploy restores it)."""
        state = read_state(self.rdb)
        until = state.get("rollback_until")
        if state.get("mode") != "blueGreen" or not until or until > time.time() \
                or self.cfg.rollback_window_s == 0:
            return
        strategy, block = strategy_values(self.helm.values())
        if strategy == "blueGreen" and not block.get("scaleDownIdle"):
            self._upgrade({"rollout.blueGreen.scaleDownIdle": True},
                          "rollback window over: scale the idle color down")
        self._state(rollback_until=None)

    # -- recovery ---------------------------------------------------------------------------
    def recover(self) -> RolloutResult | None:
        """Finish or revert the rollout of a run that died (``phase`` still ``rolling``)."""
        state = read_state(self.rdb)
        if state.get("phase") != "rolling" or state.get("run_id") == self.audit.run_id:
            return None
        dead = state.get("run_id")
        strategy, block = strategy_values(self.helm.values())
        if state.get("mode") == "canary" and strategy == "canary" \
                and state.get("step") == "promoting" and state.get("candidate"):
            # Its analyses had passed and the stable track may already serve it: finish.
            cand = state["candidate"]
            why = f"run {dead} died promoting {cand} (its analyses had passed): promotion " \
                  "finished"
            rev = self._promote(cand, why)
            if not self.dry:
                from training.register import set_champion

                set_champion(cand, f"retrain {self.audit.run_id}: {why}")
            return RolloutResult("promoted", why, rev, {"dead_run": state, "candidate": cand})
        if state.get("mode") == "canary" and strategy == "canary":
            why = f"run {dead} died at {state.get('step')}: canary weight back to 0, stable " \
                  f"{block['stable']['modelTag']} untouched"
            rev = self._upgrade({"rollout.canary.weight": 0}, why)
            self._state(phase="done", canary_weight=0, step="recovered",
                        stable_version=version(block["stable"]["modelTag"]))
            return RolloutResult("rolled_back", why, rev, {"dead_run": state})
        if state.get("mode") == "blueGreen" and strategy == "blueGreen":
            active = block["activeColor"]
            if active != state.get("active_color"):  # the switch landed before the run died
                why = f"run {dead} died after switching to {active}: kept"
                self._state(phase="done", step="recovered", active_color=active,
                            stable_version=version(block[active]["modelTag"]))
                return RolloutResult("promoted", why, self.helm.revision(), {"dead_run": state})
            idle = OTHER[active]
            why = f"run {dead} died at {state.get('step')}: {active} stays active, {idle} back " \
                  f"to {state.get('idle_tag_before')}"
            rev = self._upgrade({f"rollout.blueGreen.{idle}.modelTag":
                                 state.get("idle_tag_before") or block[active]["modelTag"]}, why)
            self._state(phase="done", step="recovered")
            return RolloutResult("rolled_back", why, rev, {"dead_run": state})
        self._state(phase="done", step="recovered")
        return RolloutResult("rolled_back", f"run {dead} died; strategy is now {strategy}, "
                                            "nothing to revert", self.helm.revision(), {})


def smoke_test(base_url: str, candidate: str, trips: list[dict] | None,
               cfg: RetrainSettings) -> dict:
    """Real predictions for known trips through the preview Service, compared with the
    offline predictions of the same model version (same code path, same online features)."""
    from service.predictor import Predictor
    from service.schemas import TripRequest

    if not trips:
        return {"passed": False, "reason": "no known trips to smoke-test with"}
    try:
        resp = httpx.post(f"{base_url}/predict_batch", json={"trips": trips}, timeout=30)
        resp.raise_for_status()
        served = resp.json()["predictions"]
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        return {"passed": False, "reason": f"preview did not answer: {exc!r}"[:500]}
    predictor = Predictor.load(candidate, cfg.redis_url or "redis://127.0.0.1:1/0", "smoke")

    async def offline_predictions():
        try:
            return await predictor.predict([TripRequest(**t) for t in trips])
        finally:
            await predictor.features.close()

    offline = asyncio.run(offline_predictions())
    want = version(candidate)
    wrong = sorted({p["model_version"] for p in served} - {want})
    if wrong:
        return {"passed": False, "reason": f"preview serves {wrong}, not {want}"}
    diffs = {t: [abs(s[k] - getattr(o, k)) / max(abs(getattr(o, k)), 1.0)
                 for s, o in zip(served, offline)]
             for t, k in (("duration", "duration_seconds"), ("fare", "fare_usd"))}
    worst = {t: float(np.max(d)) for t, d in diffs.items()}
    ok = all(v <= cfg.smoke_tolerance for v in worst.values())
    reason = (f"{len(trips)} trips, worst relative difference " +
              ", ".join(f"{t} {v:.4f}" for t, v in worst.items()) +
              f" (tolerance {cfg.smoke_tolerance})")
    return {"passed": ok, "reason": reason, "worst": worst, "trips": len(trips)}
