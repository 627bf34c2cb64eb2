"""Command line: ``python -m drift_monitor [run|evaluate-once|settings]`` (``run`` by default)."""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sys
from collections.abc import Iterator

import typer
from pydantic import ValidationError

from drift_monitor.settings import DriftSettings

app = typer.Typer(add_completion=False, no_args_is_help=False,
                  help="taxi-serve drift monitor: live windows from Redis vs model references.")
log = logging.getLogger("drift_monitor")


def _settings() -> DriftSettings:
    try:
        return DriftSettings()
    except ValidationError as exc:
        typer.echo(f"invalid drift monitor settings:\n{exc}", err=True)
        raise typer.Exit(2) from exc


@contextlib.contextmanager
def _redis(settings: DriftSettings) -> Iterator[DriftSettings]:
    """Yield settings with a Redis URL: the configured one, else a private local server."""
    if settings.redis_url:
        yield settings
        return
    try:  # common/ is the main repo's (redis + stdlib only); present when run from the repo root
        from common.redis_local import LocalRedis
    except ImportError as exc:
        typer.echo("REDIS_URL is not set (and common.redis_local is not importable)", err=True)
        raise typer.Exit(2) from exc
    server = LocalRedis().start()
    log.warning("REDIS_URL is not set: started a private Redis at %s (empty until a service "
                "logs to it)", server.url)
    try:
        yield settings.model_copy(update={"redis_url": server.url})
    finally:
        server.stop()


@app.callback(invoke_without_command=True)
def _default(ctx: typer.Context) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if ctx.invoked_subcommand is None:
        run()


@app.command()
def run() -> None:
    """Serve /metrics and /healthz on TAXI_DRIFT_PORT and evaluate every TAXI_DRIFT_INTERVAL_S."""
    settings = _settings()
    with _redis(settings) as settings:
        from drift_monitor.monitor import Monitor  # alibi-detect import takes seconds
        from drift_monitor.server import serve

        monitor = Monitor(settings)
        stale = max(3 * settings.interval_s, 60.0)
        server = serve(settings.host, settings.port, monitor.registry,
                       lambda: monitor.health.status(stale))
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: monitor.stop())
        log.info("drift monitor on %s:%d, Redis %s, window %d, every %.0f s",
                 settings.host, settings.port, settings.redis_url, settings.window_size,
                 settings.interval_s)
        try:
            monitor.run()
        finally:
            server.shutdown()


@app.command("evaluate-once")
def evaluate_once() -> None:
    """Evaluate every served version once, store the verdicts, print them as JSON lines."""
    settings = _settings()
    if not settings.redis_url:
        typer.echo("REDIS_URL is not set: nothing to evaluate", err=True)
        raise typer.Exit(2)
    from drift_monitor.monitor import Monitor

    for verdict in Monitor(settings).evaluate_once():
        typer.echo(json.dumps(verdict.to_json(), sort_keys=True))


@app.command("settings")
def show_settings() -> None:
    """Print the effective settings as JSON (after validation)."""
    typer.echo(_settings().model_dump_json(indent=2))


def main() -> None:
    """Entry point of ``python -m drift_monitor``."""
    app(prog_name="python -m drift_monitor")
    sys.exit(0)
