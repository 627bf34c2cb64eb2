"""Typer CLI of the retrain job: ``python -m retrain run`` does everything; each step also
runs alone, and every command takes ``--dry-run`` (read and report, change nothing)."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer

warnings.filterwarnings("ignore", category=DeprecationWarning)

app = typer.Typer(help="taxi-serve retrain-and-rollout job.", no_args_is_help=True,
                  add_completion=False)
DryRun = Annotated[bool, typer.Option("--dry-run", help="report only, change nothing")]
Tag = Annotated[str, typer.Option(help="candidate model tag, e.g. taxi_trip:2026...")]


def _ctx(dry_run: bool):
    from retrain.job import context
    from retrain.settings import RetrainSettings

    return context(RetrainSettings(), dry_run)


def _cluster_ctx(dry_run: bool):
    """The job context for steps that act on the Helm release (they need a namespace)."""
    ctx = _ctx(dry_run)
    if ctx.helm is None:
        raise typer.BadParameter("no namespace: set TAXI_RETRAIN_NAMESPACE or run in-cluster")
    return ctx


def _print(obj) -> None:
    typer.echo(json.dumps(obj, indent=2, default=str))


@app.callback()
def _stdout_is_the_answer() -> None:
    """Libraries print progress to stdout (Feast's materialize does); send it to stderr so
    stdout carries only each command's JSON answer."""
    global _print
    out = sys.stdout
    sys.stdout = sys.stderr

    def answer(obj) -> None:
        out.write(json.dumps(obj, indent=2, default=str) + "\n")
        out.flush()

    _print = answer


@app.command()
def run(dry_run: DryRun = False,
        force: Annotated[bool, typer.Option("--force", help="retrain even if no trigger fires")]
        = False) -> None:
    """Decide, retrain, gate, build, roll out and audit, under the Lease."""
    from retrain.job import run as run_job

    record = run_job(_ctx(dry_run), force)
    _print({k: v for k, v in record.items() if k != "steps"})
    if record.get("outcome") == "failed":
        raise typer.Exit(1)


@app.command()
def decide(dry_run: DryRun = False, force: bool = False) -> None:
    """Step 1: print the decision and its evidence (recorded as a step unless --dry-run)."""
    from retrain.decide import decide as decide_fn
    from retrain.decide import gather
    from training.register import current_champion

    ctx = _ctx(dry_run)
    decision = decide_fn(gather(ctx.rdb, current_champion(), ctx.cfg), ctx.cfg, force)
    ctx.audit.step("decide", reason="; ".join(decision.reasons), retrain=decision.retrain)
    _print(decision.as_dict())


@app.command("retrain")
def retrain_cmd(dry_run: DryRun = False) -> None:
    """Step 2a: train a candidate on the trailing window (saved to the store, not promoted)."""
    from retrain.retrain import retrain, trailing_window

    ctx = _ctx(dry_run)
    if dry_run:
        _print({"would_train_on": [str(p) for p in trailing_window(ctx.cfg.data,
                                                                   ctx.cfg.window_months)]})
        return
    cand = retrain(ctx.cfg, ctx.cfg.redis_url, ctx.work_dir)
    ctx.audit.step("retrain", reason=f"trained {cand.tag}", window=cand.window)
    _print({"tag": cand.tag, "gate_window": str(cand.gate_window), "window": cand.window,
            "evaluation": cand.evaluation})


@app.command("gate")
def gate_cmd(candidate: Tag, window: Annotated[Path, typer.Option(help="gate_window.parquet")],
             dry_run: DryRun = False) -> None:
    """Step 2b: candidate vs champion on the newest labelled window (exit 1 = rejected)."""
    import pandas as pd

    from retrain.retrain import gate
    from training.register import current_champion

    ctx = _ctx(dry_run)
    result = gate(candidate, current_champion(), pd.read_parquet(window), ctx.cfg.gate_margin,
                  ctx.cfg.gate_tolerance)
    ctx.audit.step("gate", ok=result.passed, reason=result.reason, mae=result.mae)
    _print(result.__dict__)
    if not result.passed:
        raise typer.Exit(1)


@app.command("build")
def build_cmd(candidate: Tag, dry_run: DryRun = False) -> None:
    """Step 3: check the candidate version in the shared model store (what the rollout ships)."""
    from retrain.retrain import build

    ctx = _ctx(dry_run)
    built = build(candidate, compile_trees=ctx.cfg.compile)
    ctx.audit.step("build", reason=f"{candidate} in the model store", **built)
    _print(built)


@app.command("rollout")
def rollout_cmd(candidate: Tag, dry_run: DryRun = False) -> None:
    """Step 4: roll the candidate out (canary steps or blue-green) on the Helm release."""
    from retrain.job import lease, smoke_trips
    from retrain.rollout import Rollout
    from training.register import current_champion, set_champion

    ctx = _cluster_ctx(dry_run)
    with lease(ctx) as held:
        if not held:
            raise typer.Exit(3)
        ro = Rollout(ctx.cfg, ctx.helm, ctx.audit, ctx.rdb, dry_run)
        recovered = ro.recover()
        if recovered:
            ctx.audit.step("recover", ok=False, reason=recovered.reason)
        result = ro.run(candidate, smoke_trips(ctx.cfg))
    if result.outcome == "promoted" and not dry_run:
        set_champion(candidate, f"retrain {ctx.audit.run_id}: {result.reason}")
    ctx.audit.finish(result.outcome, [result.reason], candidate, current_champion(),
                     result.metrics, result.revision)
    _print(result.__dict__)


@app.command()
def analyse(canary: Annotated[str, typer.Option(help="canary model version")] = "",
            stable: Annotated[str, typer.Option(help="stable model version")] = "",
            dry_run: DryRun = False) -> None:
    """One canary analysis against Prometheus (read-only; exit 1 = fail)."""
    from retrain.analysis import analyse as analyse_fn
    from retrain.settings import RetrainSettings

    verdict = analyse_fn(RetrainSettings(), canary or None, stable or None)
    _print(verdict.as_dict())
    if not verdict.passed:
        raise typer.Exit(1)


@app.command()
def recover(dry_run: DryRun = False) -> None:
    """Finish or revert the rollout of a run that died (what `run` does first)."""
    from retrain.job import lease
    from retrain.rollout import Rollout

    ctx = _cluster_ctx(dry_run)
    with lease(ctx) as held:
        if not held:
            raise typer.Exit(3)
        result = Rollout(ctx.cfg, ctx.helm, ctx.audit, ctx.rdb, dry_run).recover()
    if result:
        ctx.audit.finish(result.outcome, [result.reason], None, None, result.metrics,
                         result.revision)
    _print(result.__dict__ if result else {"recovered": None, "reason": "nothing in progress"})


@app.command()
def state() -> None:
    """Show taxi:rollout:state, taxi:retrain:last and the outcome counts."""
    from retrain.audit import LAST, OUTCOMES, read_state

    ctx = _ctx(True)
    last = ctx.rdb.get(LAST)
    _print({"rollout": read_state(ctx.rdb), "last": json.loads(last) if last else None,
            "outcomes": {k.decode(): int(v) for k, v in ctx.rdb.hgetall(OUTCOMES).items()}})


if __name__ == "__main__":
    app()
