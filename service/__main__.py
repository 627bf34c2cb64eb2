"""``python -m service``: serve predictions (HTTP + gRPC) with everything a fresh machine needs.

Starts a private Redis when ``REDIS_URL`` is unset, materializes the Feast features into it,
then runs the BentoML service (which starts gRPC in-process) until interrupted.
"""

from __future__ import annotations

import os
import subprocess
import sys

import typer
from rich.console import Console

from common.paths import ROOT
from common.progress import step
from common.redis_local import redis_url_or_local, terminate
from common.settings import Settings

console = Console(stderr=True, soft_wrap=True)


def main(materialize: bool = typer.Option(True, help="load features into Redis first")) -> None:
    """Serve the configured model on TAXI_HTTP_PORT (HTTP) and TAXI_GRPC_PORT (gRPC)."""
    settings = Settings()
    from training.register import resolve_tag

    try:
        tag = resolve_tag(settings.model_tag)
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
        console.print(f"HTTP  http://127.0.0.1:{settings.http_port}/predict  "
                      f"gRPC 127.0.0.1:{settings.grpc_port} (taxi.v1.TripPredictor)")
        body = '{"pickup_zone_id": 74, "dropoff_zone_id": 236, ' \
               '"pickup_datetime": "2023-02-07T08:30:00"}'
        console.print(f"try: curl -s -XPOST localhost:{settings.http_port}/predict "
                      f"-H 'content-type: application/json' -d '{body}'")
        console.print("starting BentoML: loading the model and warming up take up to a "
                      "minute; ready when /readyz answers 200")
        cmd = [sys.executable, "-m", "bentoml", "serve", "service.service:TaxiService",
               "--host", "0.0.0.0", "--port", str(settings.http_port)]
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
        try:
            raise typer.Exit(proc.wait())
        except KeyboardInterrupt:
            terminate(proc, timeout=15)


if __name__ == "__main__":
    typer.run(main)
