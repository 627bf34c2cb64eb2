"""Draining before shutdown: a serving pod's preStop hook creates ``TAXI_DRAIN_FILE``; from
then on every worker answers ``/readyz`` with 503 and closes each HTTP/1.1 connection after
its response (``Connection: close``).

Why: kept-alive connections stay on the pod they were opened to, whatever the Service's
endpoints say, so a client that keeps one would meet the connection closing when SIGTERM
comes. Closing each after one more response moves the clients, during the preStop delay, to
connections that kube-proxy routes to the remaining pods. One file serves every worker of the
pod (the preStop hook runs once per container, not per worker).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

log = logging.getLogger("taxi.drain")


class Drain:
    """Watches for the drain file; ``active`` turns True once it exists (and stays True)."""

    def __init__(self, path: Path | None, every_s: float = 0.2):
        self.path, self.every_s = path, every_s
        self.active = False
        self._task: asyncio.Task | None = None

    def check(self) -> bool:
        if not self.active and self.path is not None and os.path.exists(self.path):
            self.active = True
            log.info("draining: %s exists; closing connections after each response", self.path)
        return self.active

    def start(self) -> None:
        """Poll in the running loop (no file, no task)."""
        if self.path is not None and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch(),
                                                                name="drain-watch")

    async def _watch(self) -> None:
        while not self.check():
            await asyncio.sleep(self.every_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
