"""Interleaved measurement: every endpoint takes one step per round, in a rotating order,
and each row reports the median over rounds, so a slow spell of a shared machine hits every
system alike. HTTP goes through wrk, gRPC through benchmarks.grpcgen (own process)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

from benchmarks import wrk
from benchmarks.systems import Endpoint
from common.paths import ROOT

PAUSE_S = 2.0  # between steps: the service writes the previous step's prediction log


def step(ep: Endpoint, seconds: float, rate: float, connections: int) -> dict:
    """One load step against one endpoint: open loop at ``rate``, closed loop when 0."""
    if ep.http:
        return wrk.run(ep.http, ep.bodies, seconds, connections, rate)
    target, method = ep.grpc
    cmd = [sys.executable, "-m", "benchmarks.grpcgen", target, method, str(ep.messages),
           "--seconds", str(seconds), "--rate", str(rate), "--clients", str(connections),
           "--warmup", "0.5"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True,
                          timeout=seconds + 90)
    return json.loads(done.stdout.strip().splitlines()[-1])


def interleaved(endpoints: list[Endpoint], rates: list[float], seconds: float, rounds: int,
                connections: int, log=print) -> list[dict]:
    """For each rate, ``rounds`` rounds over every endpoint; one row per (endpoint, rate)."""
    rows = []
    for rate in rates:
        runs: dict[int, list[dict]] = {i: [] for i in range(len(endpoints))}
        for r in range(rounds):
            order = list(range(len(endpoints)))
            order = order[r % len(order):] + order[:r % len(order)]
            for i in order:
                time.sleep(PAUSE_S)
                got = step(endpoints[i], seconds, rate, connections)
                got["load1"] = os.getloadavg()[0]
                runs[i].append(got)
                log(f"  round {r + 1}/{rounds} {rate:.0f}/s {endpoints[i].system} "
                    f"{endpoints[i].protocol}: p50 {got['p50_ms']:.2f} p99 {got['p99_ms']:.2f} "
                    f"ms, {got['achieved']:.0f} req/s, load {got['load1']:.1f}")
        for i, ep in enumerate(endpoints):
            rows.append(summary(ep, runs[i]))
    return rows


def summary(ep: Endpoint, runs: list[dict]) -> dict:
    """Median p50, p99 and req/s over rounds, errors summed, every round's p50/p99 kept."""
    return {"system": ep.system, "protocol": ep.protocol, "per_request": ep.per_request,
            "offered": runs[0]["offered"],
            "achieved": statistics.median(r["achieved"] for r in runs),
            "p50_ms": statistics.median(r["p50_ms"] for r in runs),
            "p99_ms": statistics.median(r["p99_ms"] for r in runs),
            "errors": sum(r["errors"] for r in runs),
            "load1": statistics.median(r["load1"] for r in runs),
            "runs": " ".join(f"{r['p50_ms']:.2f}/{r['p99_ms']:.2f}" for r in runs)}
