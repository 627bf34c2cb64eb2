"""Start `bentoml serve` for a service target on free loopback ports and wait until ready
(used by the tests and `make bench`)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from common.paths import ROOT
from common.redis_local import terminate


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """A `bentoml serve` process with its HTTP and gRPC addresses."""

    def __init__(self, proc, http_port, grpc_port, log_path):
        self.proc, self.log_path = proc, log_path
        self.http = f"http://127.0.0.1:{http_port}"
        self.grpc = f"127.0.0.1:{grpc_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def private_home(log_path) -> str:
    """A BENTOML_HOME of this process's own that shares the model store and champion pointer.

    BentoML keeps its Prometheus multiprocess files in ``$BENTOML_HOME/prometheus_multiproc_dir``
    and clears them at start: two services on one home would wipe and then mix each other's
    metrics (a stable and a canary would report the same numbers).
    """
    shared = Path(os.environ.get("BENTOML_HOME", Path.home() / "bentoml"))
    home = Path(tempfile.mkdtemp(prefix="bentoml-home-", dir=Path(log_path).parent))
    for name in ("models", "taxi-serve", "bentos"):
        try:
            (shared / name).mkdir(parents=True, exist_ok=True)
        except OSError:  # a read-only store (serving pods): link what is there
            pass
        (home / name).symlink_to(shared / name)
    return str(home)


def serve(target: str, env: dict, log_path, cwd=ROOT, wait: bool = True,
          cpus: str | None = None) -> Served:
    """``cpus``: a taskset CPU list the server and its workers are pinned to (benchmarks)."""
    http_port, grpc_port = free_port(), free_port()
    full_env = {**os.environ, **env, "TAXI_HTTP_PORT": str(http_port),
                "TAXI_GRPC_PORT": str(grpc_port), "TAXI_HOST": "127.0.0.1"}
    if "BENTOML_HOME" not in env:
        full_env["BENTOML_HOME"] = private_home(log_path)
    # service.serve_cli (crashed workers replaced within a second) is importable from this
    # checkout; a built Bento served from elsewhere gets BentoML's own command line
    cli = "service.serve_cli" if Path(cwd).resolve() == ROOT.resolve() else "bentoml"
    cmd = [sys.executable, "-m", cli, "serve", target, "--host", "127.0.0.1",
           "--port", str(http_port)]
    if cpus is not None:
        cmd = ["taskset", "-c", cpus, *cmd]
    proc = subprocess.Popen(cmd, cwd=cwd, env=full_env, stdout=open(log_path, "w"),
                            stderr=subprocess.STDOUT)
    served = Served(proc, http_port, grpc_port, log_path)
    if wait:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"service exited {proc.returncode}:\n{served.log()[-4000:]}")
            try:
                if httpx.get(f"{served.http}/readyz", timeout=1).status_code == 200:
                    return served
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        stop(served)
        raise RuntimeError(f"service not ready in 180 s:\n{served.log()[-4000:]}")
    return served


def stop(served: Served) -> None:
    terminate(served.proc, timeout=20)
