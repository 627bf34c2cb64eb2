"""Audit trail of a run: structured JSON log lines, Kubernetes Events, the Redis keys of the
monitoring contract (docs/monitoring.md) and one audit ConfigMap per run kept with the release.

Every decision and step goes through ``Audit.step``: one JSON line on stderr, one Event on the
release's retrain CronJob (when the job runs in Kubernetes), and one entry in the run's record.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import redis

from retrain.kube import Kube

LAST = "taxi:retrain:last"
OUTCOMES = "taxi:retrain:outcomes"
ROLLOUT_STATE = "taxi:rollout:state"
OUTCOME_NAMES = ("skipped", "rejected", "promoted", "rolled_back", "failed", "built")


def log_json(event: str, **fields: Any) -> None:
    """One structured log line (what the cluster's log pipeline indexes)."""
    line = {"ts": round(time.time(), 3), "component": "retrain", "event": event, **fields}
    print(json.dumps(line, default=str, sort_keys=True), file=sys.stderr, flush=True)


@dataclass
class Audit:
    """What one run did, why, and the metrics it saw."""

    rdb: redis.Redis | None
    kube: Kube | None
    dry_run: bool = False
    run_id: str = field(default_factory=lambda: f"{time.strftime('%Y%m%d%H%M%S')}-"
                                                f"{uuid.uuid4().hex[:6]}")
    started_at: float = field(default_factory=time.time)
    steps: list[dict] = field(default_factory=list)

    def step(self, name: str, ok: bool = True, reason: str = "", **data: Any) -> None:
        """Record a decision or a step: JSON log, Kubernetes Event and the run's record."""
        entry = {"step": name, "ok": ok, "reason": reason, "at": round(time.time(), 3),
                 "run_id": self.run_id, "dry_run": self.dry_run, **data}
        self.steps.append(entry)
        log_json(name, **{k: v for k, v in entry.items() if k != "step"})
        if self.kube and not self.dry_run:
            self.kube.event(reason=f"Retrain{name.title().replace('-', '').replace('_', '')}",
                            message=f"{name}: {reason}"[:1000], warning=not ok)

    def finish(self, outcome: str, reasons: list[str], candidate: str | None,
               champion: str | None, metrics: dict | None = None,
               revision: int | None = None) -> dict:
        """Write ``taxi:retrain:last``, count the outcome, and keep the audit record."""
        record = {"outcome": outcome, "started_at": self.started_at, "finished_at": time.time(),
                  "reasons": reasons, "candidate": candidate, "champion": champion,
                  "run_id": self.run_id, "dry_run": self.dry_run}
        full = {**record, "metrics": metrics or {}, "steps": self.steps,
                "helm_revision": revision}
        log_json("finish", **record)
        if self.dry_run:
            return full
        if self.rdb is not None:
            pipe = self.rdb.pipeline()
            pipe.set(LAST, json.dumps(record, default=str))
            pipe.hincrby(OUTCOMES, outcome, 1)
            pipe.execute()
        if self.kube:
            self.kube.event(reason=f"Retrain{outcome.title().replace('_', '')}",
                            message=f"{outcome}: {'; '.join(reasons)}"[:1000],
                            warning=outcome in ("failed", "rolled_back"))
            self.kube.audit_configmap(self.run_id, full, revision)
        return full


def read_state(rdb: redis.Redis | None) -> dict:
    """The rollout state (``taxi:rollout:state``), {} when none was written."""
    if rdb is None:
        return {}
    raw = rdb.get(ROLLOUT_STATE)
    return json.loads(raw) if raw else {}


def write_state(rdb: redis.Redis | None, dry_run: bool, **state: Any) -> dict:
    """Merge ``state`` into ``taxi:rollout:state``; it is also the job's progress record, so a
    run that dies mid-rollout leaves what the next run needs to resume or revert."""
    merged = {**read_state(rdb), **state, "updated_at": time.time()}
    if rdb is not None and not dry_run:
        rdb.set(ROLLOUT_STATE, json.dumps(merged, default=str))
    return merged
