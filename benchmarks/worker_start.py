"""Where a serving worker's start goes: the steps BentoML's worker process takes, timed one
by one in a fresh process (wall and CPU seconds).

    REDIS_URL=redis://127.0.0.1:6379/15 python -m benchmarks.worker_start

The steps: BentoML's worker imports; loading the service module (``service.service``, which
imports the whole serving path); building the ASGI app; the service's ``__init__`` (the
model's compiled trees, their reference check, the fallback snapshot); gRPC's imports. Redis
need not hold features: the worker only connects lazily.
"""

from __future__ import annotations

import os
import resource
import time


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    marks = [("start", time.perf_counter(), _cpu())]

    def mark(name: str) -> None:
        marks.append((name, time.perf_counter(), _cpu()))

    import click  # noqa: F401 - what the worker's entry point imports
    import psutil  # noqa: F401
    import uvicorn  # noqa: F401
    from _bentoml_impl.loader import load

    mark("BentoML worker imports")
    svc = load("service.service:TaxiService", standalone_load=True)
    mark("import the service module")
    svc.to_asgi(is_main=True)
    mark("build the ASGI app")
    svc.inner()
    mark("__init__: load and check the model")
    import service.grpc_server  # noqa: F401

    mark("gRPC imports")
    for (_, t0, c0), (name, t1, c1) in zip(marks, marks[1:]):
        print(f"{name:36s} wall {t1 - t0:6.2f} s   cpu {c1 - c0:6.2f} s")
    print(f"{'total':36s} wall {marks[-1][1] - marks[0][1]:6.2f} s   cpu {_cpu():6.2f} s"
          f"   (load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
