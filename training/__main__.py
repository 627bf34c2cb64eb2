"""Typer CLI of the offline pipeline: ``python -m training --help``."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from common.paths import ARTIFACTS, FEATURE_REPO, SAMPLE_DIR, ZONES_CSV
from common.progress import step
from common.redis_local import redis_url_or_local

# ibis (under Feast's duckdb store) warns about its own deprecated calls on every query
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ibis\..*")

app = typer.Typer(help="taxi-serve offline pipeline: ingest, validate, features, train.",
                  no_args_is_help=True, add_completion=False)
out = Console()

DataOpt = Annotated[list[Path] | None,
                    typer.Option("--data", help="trip files or folders (default: the sample)")]
Month = Annotated[str | None, typer.Option(help="YYYY-MM")]


def _month(value: str | None, name: str) -> str | None:
    import pandas as pd

    if value is None:
        return None
    try:
        return str(pd.Period(value, freq="M"))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a month like 2023-02",
                                 param_hint=name) from None


@app.command()
def validate(data: DataOpt = None, out_dir: Path = ARTIFACTS / "validation",
             chunk_rows: Annotated[int | None, typer.Option(
                 min=1_000, help="raw rows validated at a time (default: "
                 "TAXI_TRAIN_CHUNK_ROWS)")] = None) -> None:
    """Validate trip files chunk by chunk: write the quarantine (parquet parts under
    OUT_DIR/quarantine.parquet/, each row with its reasons) and print the rule summary."""
    from training.bounded import ingest_validate
    from training.pipeline import discover
    from training.settings import TrainScaleSettings

    files = discover(data or [SAMPLE_DIR])
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = ingest_validate(files, out_dir, chunk_rows or TrainScaleSettings().chunk_rows,
                              keep_clean=False)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    out.print_json(data={k: v for k, v in summary.items() if k != "rules"})


@app.command()
def download(months: Annotated[list[str], typer.Argument(help="months, e.g. 2023-01")],
             taxi: str = "green", cache_dir: Path = Path("data/cache"),
             base_url: Annotated[str | None, typer.Option(help="TLC mirror")] = None) -> None:
    """Download TLC monthly trip files (cached: a file already present is not fetched)."""
    from training.data import TLC_BASE_URL, download_month

    for month in months:
        path = download_month(taxi, _month(month, "months"), cache_dir, base_url or TLC_BASE_URL)
        out.print(f"{path}")


@app.command()
def pipeline(data: DataOpt = None,
             eval_month: Month = None, train_from: Month = None,
             feature_repo: Path = FEATURE_REPO, zones: Path = ZONES_CSV,
             out_dir: Path = ARTIFACTS,
             register: Annotated[bool, typer.Option(help="save to the BentoML store")] = True,
             tolerance: Annotated[float, typer.Option(help="gate: allowed MAE worsening")] = 0.0,
             bounded: Annotated[bool, typer.Option(
                 "--bounded/--in-memory", help="memory bounded by TAXI_TRAIN_* settings "
                 "(docs/training-scale.md), or every trip in memory")] = True,
             cluster: Annotated[str | None, typer.Option(
                 help="Dask scheduler to train on (default: TAXI_TRAIN_DASK_ADDRESS; unset: "
                 "train here)")] = None,
             threads: Annotated[int, typer.Option(
                 min=1, help="LightGBM threads (1 on a machine busy with other work: two "
                 "threads that wait for each other at every split crawl when cores are "
                 "oversubscribed)")] = 2,
             ) -> None:
    """Run ingest -> validate -> features -> Feast -> train -> evaluate -> register."""
    from contextlib import nullcontext

    from training.bounded import prepare_bounded
    from training.distributed import cluster_fit
    from training.evaluate import markdown, table
    from training.pipeline import discover, prepare, train_and_evaluate
    from training.register import gate, save_model, set_champion
    from training.settings import TrainScaleSettings
    from training.train import TrainConfig

    start = time.monotonic()
    eval_month, train_from = _month(eval_month, "--eval-month"), _month(train_from, "--train-from")
    files = discover(data or [SAMPLE_DIR])
    cfg = TrainConfig(num_threads=threads)
    scale = TrainScaleSettings()
    with redis_url_or_local() as redis_url:
        prep = (prepare_bounded(files, zones, feature_repo, redis_url, out_dir, eval_month,
                                train_from, settings=scale) if bounded
                else prepare(files, zones, feature_repo, redis_url, out_dir))
    cluster = cluster or scale.dask_address
    with cluster_fit(cluster) if cluster else nullcontext(None) as fit:
        trained = train_and_evaluate(prep, eval_month, cfg, train_from=train_from,
                                     **({"fit": fit} if fit else {}))
    out.print(table(trained["evaluation"], f"evaluation on {trained['window']['eval_month']} "
                    f"(trained on {', '.join(trained['window']['train_months'])})"))
    report = {"dataset_version": prep.version, "window": trained["window"],
              "validation": {k: v for k, v in prep.validation_summary.items() if k != "rules"},
              "evaluation": trained["evaluation"], "fit": trained["fit"]}
    reports = out_dir / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    if register:
        with step("register the model in the BentoML store"):
            tag = save_model(trained, prep, cfg.as_dict(), zones)
        promote, reason = gate(tag, trained["test"], tolerance)
        if promote:
            set_champion(tag, reason)
        out.print(f"model {tag}: {'CHAMPION' if promote else 'candidate only'} - {reason}")
        report |= {"tag": tag, "champion": promote, "gate": reason}
    name = report.get("tag", prep.version).replace(":", "_")
    (reports / f"{name}.json").write_text(json.dumps(report, indent=2, default=str))
    (reports / f"{name}.md").write_text(markdown(trained["evaluation"]) + "\n")
    out.print(f"report: {reports / name}.json; pipeline took {time.monotonic() - start:.1f} s")


@app.command()
def backtest(data: DataOpt = None,
             window: Annotated[list[str] | None, typer.Option(
                 "--window", help="training window in months before M ('all' or a number)")
             ] = None,
             half_life: Annotated[list[str] | None, typer.Option(
                 help="recency half-life in days ('none': equal weights)")] = None,
             feature_repo: Path = FEATURE_REPO, zones: Path = ZONES_CSV,
             out_dir: Path = ARTIFACTS,
             threads: Annotated[int, typer.Option(
                 min=1, help="LightGBM threads (1 on a machine busy with other work)")] = 2,
             eval_months: Annotated[list[str] | None, typer.Option(
                 "--eval-month", help="months to evaluate (default: every month after the first)")
             ] = None,
             ) -> None:
    """Train on months before M, evaluate on M, for every month M after the first, for each
    window x half-life, beside the plain LightGBM; writes reports/backtest.{md,csv}."""
    from training import backtest as bt
    from training.pipeline import discover, prepare
    from training.train import TrainConfig

    def parse(values, name, none_word, cast):
        try:
            return [None if v == none_word else cast(v) for v in values]
        except ValueError:
            raise typer.BadParameter(f"{values!r}: numbers or {none_word!r}",
                                     param_hint=name) from None

    windows = parse(window or ["all", "2"], "--window", "all", int)
    lives = parse(half_life or ["120", "30", "none"], "--half-life", "none", float)
    start = time.monotonic()
    files = discover(data or [SAMPLE_DIR])
    with redis_url_or_local() as redis_url:
        prep = prepare(files, zones, feature_repo, redis_url, out_dir, materialize=False)
    variants = [bt.Variant(w, h) for w in windows for h in lives]
    evaluate = [_month(m, "--eval-month") for m in eval_months or []] or None
    results = bt.run(prep, variants, evaluate, cfg=TrainConfig(num_threads=threads))
    if results.empty:
        raise typer.BadParameter("need at least two months of trips", param_hint="--data")
    out.print(bt.rich_table(bt.summary(results)))
    reports = out_dir / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    results.to_csv(reports / "backtest.csv", index=False)
    (reports / "backtest.md").write_text(bt.markdown(results))
    out.print(f"report: {reports / 'backtest.md'}; backtest took {time.monotonic() - start:.1f} s")


@app.command()
def materialize(feature_repo: Path = FEATURE_REPO) -> None:
    """Apply the Feast repo and load the newest features into Redis (REDIS_URL required)."""
    import os

    from training import store

    if not os.environ.get("REDIS_URL"):
        raise typer.BadParameter("set REDIS_URL: materializing into a throwaway Redis is "
                                 "pointless", param_hint="REDIS_URL")
    if not (store.data_dir(feature_repo) / "route_stats.parquet").exists():
        raise typer.BadParameter(f"no feature tables in {store.data_dir(feature_repo)}: run "
                                 "`python -m training pipeline` first", param_hint="--feature-repo")
    fs = store.open_store(feature_repo, os.environ["REDIS_URL"])
    names = store.apply(fs)
    store.materialize(fs)
    out.print(f"applied {len(names)} objects and materialized to {os.environ['REDIS_URL']}")


@app.command("compile")
def compile_(tag: Annotated[str, typer.Argument(help="model tag")] = "taxi_trip:champion",
             jobs: int = typer.Option(2, min=1, help="boosters compiled side by side")) -> None:
    """Compile a model version's boosters to machine code for serving (lleaves)."""
    import bentoml

    from training.compile import compile_model
    from training.register import resolve_tag

    try:
        resolved = resolve_tag(tag)
        bentoml.models.get(resolved)
    except (LookupError, bentoml.exceptions.NotFound, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="TAG") from None
    start = time.monotonic()
    with step(f"compile {resolved}'s trees to machine code (about a minute)"):
        path = compile_model(resolved, jobs)
    out.print(f"compiled {resolved} -> {path} ({time.monotonic() - start:.1f} s)")


@app.command()
def bootstrap(data: DataOpt = None) -> None:
    """The first model of an empty store: run the pipeline (the bundled sample by default),
    which registers a champion and loads its features into REDIS_URL, then compile its trees.
    Does nothing when a champion exists (the chart runs it on every install and upgrade)."""
    import os

    from training.register import current_champion, store_home

    existing = current_champion()
    if existing:
        out.print(f"champion {existing} exists in {store_home()}: nothing to do")
        return
    if not os.environ.get("REDIS_URL"):
        raise typer.BadParameter("set REDIS_URL: the first model's features go there",
                                 param_hint="REDIS_URL")
    # serving links the store's bentos/ into a private home when the store is read-only
    (store_home() / "bentos").mkdir(parents=True, exist_ok=True)
    pipeline(data=data, eval_month=None, train_from=None, feature_repo=FEATURE_REPO,
             zones=ZONES_CSV, out_dir=ARTIFACTS, register=True, tolerance=0.0)
    if current_champion() is None:
        out.print("the pipeline registered no champion")
        raise typer.Exit(1)
    compile_(tag="taxi_trip:champion", jobs=2)


@app.command()
def champion() -> None:
    """Show the current champion model and the promotion history."""
    from training.register import champion_file

    path = champion_file()
    if not path.exists():
        out.print("no champion yet")
        raise typer.Exit(1)
    out.print_json(path.read_text())


def _exit_on_sigterm() -> None:
    # As PID 1 in a container Python ignores SIGTERM unless it handles it: exit (running the
    # cleanups, e.g. a private Redis) instead of waiting to be killed after the grace period.
    import signal
    import sys

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


if __name__ == "__main__":
    _exit_on_sigterm()
    app()
