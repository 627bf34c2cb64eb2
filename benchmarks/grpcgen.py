"""gRPC load generator for `make bench`, run as its own process (pinned beside Redis): sends
pre-serialized messages through a generic unary call (bytes in, bytes out), so it spends its
core on the calls, not on protobuf, and drives any service alike (taxi-serve, MLServer V2).

``python -m benchmarks.grpcgen TARGET METHOD MESSAGES --seconds S [--rate R] [--channels N]``
prints one JSON row. Open loop at ``--rate`` (latency from the scheduled send time) or, with
rate 0, closed loop with ``--clients``."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path

import grpc
import typer

from benchmarks.loadgen import closed_loop, open_loop
from benchmarks.peer_inputs import read_messages


async def caller(target: str, method: str, messages: list[bytes], channels: int):
    """Round-robin over several channels: one HTTP/2 connection would pin every call to one
    server worker (SO_REUSEPORT balances connections, not calls), as a real client pool won't."""
    pool = [grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
            for _ in range(channels)]
    calls = itertools.cycle([c.unary_unary(method) for c in pool])
    msgs = itertools.cycle(messages)

    async def call() -> bool:
        return len(await next(calls)(next(msgs), timeout=5)) > 0

    async def close() -> None:
        for c in pool:
            await c.close()
    return call, close


async def drive(target: str, method: str, messages: list[bytes], seconds: float, rate: float,
                clients: int, channels: int, warmup: float) -> dict:
    call, close = await caller(target, method, messages, channels)
    try:
        await closed_loop(call, 4, warmup)
        result = await (open_loop(call, rate, seconds) if rate else
                        closed_loop(call, clients, seconds))
    finally:
        await close()
    row = result.row()
    if not rate:
        row["offered"] = f"closed ({clients})"
    return row


def main(target: str, method: str, messages: Path,
         seconds: float = typer.Option(10.0, max=600.0), rate: float = typer.Option(500.0),
         clients: int = typer.Option(32), channels: int = typer.Option(8),
         warmup: float = typer.Option(1.0)) -> None:
    if rate * seconds > 1_000_000:
        raise typer.BadParameter("rate x seconds: at most 1,000,000 calls a run")
    row = asyncio.run(drive(target, method, read_messages(messages), seconds, rate, clients,
                            channels, warmup))
    print(json.dumps(row))


if __name__ == "__main__":
    typer.run(main)
