"""``python -m service``: serve predictions (HTTP + gRPC) with everything a fresh machine needs.

Starts a private Redis when ``REDIS_URL`` is unset, materializes the Feast features into it,
then runs the BentoML service (which starts gRPC in-process) until interrupted.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import typer
from rich.console import Console

from common.paths import ROOT
from common.progress import step
from common.redis_local import redis_url_or_local, terminate
from common.settings import Settings
from service.launcher import private_home

console = Console(stderr=True, soft_wrap=True)


def serve_command(settings: Settings) -> list[str]:
    """`bentoml serve` on the configured address (gRPC binds the same one in the worker), with
    crashed workers replaced within ``process_check_s`` (service/serve_cli.py)."""
    return [sys.executable, "-m", "service.serve_cli", "serve", "service.service:TaxiService",
            "--host", str(settings.host), "--port", str(settings.http_port)]


def addresses(settings: Settings) -> str:
    """Where both protocols listen: the address ``serve_command`` binds, not a guess."""
    host = str(settings.host)
    return (f"HTTP  http://{host}:{settings.http_port}/predict  "
            f"gRPC {host}:{settings.grpc_port} (taxi.v1.TripPredictor)")


def wait_for_model(tag: str, wait_s: float) -> str:
    """Resolve ``tag`` to a model in the store, waiting up to ``wait_s`` seconds for it (on a
    fresh install the bootstrap Job is still training): until then the pod stays unready and
    its log says what it waits for."""
    import bentoml
    from bentoml.exceptions import NotFound

    from training.register import resolve_tag, store_home

    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    deadline = time.monotonic() + wait_s
    while True:
        try:
            resolved = resolve_tag(tag)
            bentoml.models.get(resolved)
            return resolved
        except (LookupError, NotFound) as exc:
            left = deadline - time.monotonic()
            if left <= 0 or stop:
                raise LookupError(f"model {tag} is not in {store_home()}: {exc}") from None
            console.print(f"waiting for model {tag} in {store_home()} ({left:.0f} s left): "
                          f"{exc}")
            time.sleep(min(10.0, left))


def main(materialize: bool = typer.Option(True, help="load features into Redis first")) -> None:
    """Serve the configured model on TAXI_HTTP_PORT (HTTP) and TAXI_GRPC_PORT (gRPC)."""
    home = Path(os.environ.get("BENTOML_HOME", Path.home() / "bentoml"))
    if home.exists() and not os.access(home, os.W_OK):
        # A read-only store (the image's, or the chart's model volume): BentoML creates
        # directories in its home as soon as it is used, so serve from a writable home that
        # links the store's models, compiled trees and bentos.
        os.environ["BENTOML_HOME"] = private_home(Path(tempfile.mkdtemp(prefix="serve-")) / "x")
    settings = Settings()
    logging.getLogger().setLevel(settings.log_level)
    try:
        tag = wait_for_model(settings.model_tag, settings.model_wait_s)
    except LookupError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    with redis_url_or_local() as redis_url:
        env = {**os.environ, "REDIS_URL": redis_url, "TAXI_MODEL_TAG": tag}
        if materialize:
            from training import store

            with step("features: Feast apply + materialize to Redis"):
                fs = store.open_store(settings.feature_repo, redis_url)
                store.apply(fs)
                store.materialize(fs)
        console.print(f"model {tag} (track {settings.track}); features in {redis_url}")
        console.print(addresses(settings))
        body = '{"pickup_zone_id": 74, "dropoff_zone_id": 236, ' \
               '"pickup_datetime": "2023-02-07T08:30:00"}'
        console.print(f"try: curl -s -XPOST localhost:{settings.http_port}/predict "
                      f"-H 'content-type: application/json' -d '{body}'")
        console.print("starting BentoML: loading the model and warming up take up to a "
                      "minute; ready when /readyz answers 200")
        proc = subprocess.Popen(serve_command(settings), cwd=ROOT, env=env)
        # As PID 1 in a container Python ignores SIGTERM unless it handles it: pass it on and
        # wait while `bentoml serve` finishes the requests in flight.
        signal.signal(signal.SIGTERM, lambda *_: proc.send_signal(signal.SIGTERM))
        try:
            raise typer.Exit(proc.wait())
        except KeyboardInterrupt:
            terminate(proc, timeout=15)


if __name__ == "__main__":
    typer.run(main)
