"""The private Redis of common/redis_local.py: a start that fails leaves no process behind."""

import os
import stat

import pytest
import redis

from common.redis_local import LocalRedis

pytestmark = pytest.mark.integration


def children_running(binary: str) -> list[int]:
    """PIDs of this process's live children whose command line starts with ``binary``."""
    me, found = os.getpid(), []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                argv0 = f.read().split(b"\0")[0].decode()
        except OSError:
            continue
        # fields[0] is the state, fields[1] the parent PID; zombies (Z) have exited.
        if int(fields[1]) == me and fields[0] != "Z" and binary in argv0:
            found.append(int(entry.name))
    return found


def test_a_server_that_never_answers_is_stopped(tmp_path):
    """A "server" that runs but never answers PING: start() times out and stops it."""
    silent = tmp_path / "silent-server"
    silent.write_text("#!/bin/sh\nexec sleep 300\n")
    silent.chmod(silent.stat().st_mode | stat.S_IEXEC)
    server = LocalRedis(binary=str(silent))
    with pytest.raises(RuntimeError, match="did not answer"):
        server.start(timeout=1.0)
    assert children_running("sleep") == []
    assert server._proc is None and server._dir is None  # temp dir removed too


def test_a_server_that_exits_is_reported(tmp_path):
    """A server binary that exits at once: start() says so, and nothing is left."""
    failing = tmp_path / "failing-server"
    failing.write_text("#!/bin/sh\nexit 3\n")
    failing.chmod(failing.stat().st_mode | stat.S_IEXEC)
    server = LocalRedis(binary=str(failing))
    with pytest.raises(RuntimeError, match="exited with 3"):
        server.start(timeout=10.0)
    assert server._proc is None and server._dir is None


def test_a_started_server_answers_and_stops():
    server = LocalRedis().start()
    try:
        assert redis.Redis.from_url(server.url).ping()
        pid = server._proc.pid
    finally:
        server.stop()
    assert pid not in children_running(server.binary)
