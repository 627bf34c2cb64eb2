"""A small asyncio Redis client for the request path: hiredis packs and parses, streams carry.

Why not ``redis.asyncio`` here: on this machine one PING through ``redis.asyncio.Redis`` took
~145 us of event-loop time against ~30 us over a bare asyncio stream (uvloop), because every
call checks a connection out of the pool (with a destructive socket poll), wraps each write in
a new Task for its timeout and packs the command in Python. The request path makes one call
per prediction, so that overhead was most of the feature fetch. This client keeps a free list
of open connections, packs with ``hiredis.pack_command`` and parses with ``hiredis.Reader``.
A connection that errors or times out mid-reply is closed, never reused (its replies could be
out of step). Feedback, the accuracy reporter and the tools keep redis-py.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from urllib.parse import unquote, urlparse

import hiredis

ReplyError = hiredis.ReplyError


class _Conn:
    __slots__ = ("reader", "writer", "parser")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer, self.parser = reader, writer, hiredis.Reader()

    def close(self) -> None:
        self.writer.close()


class RespClient:
    """Commands to one Redis (``redis://[user:password@]host:port/db``, or ``rediss://``),
    each bounded by ``timeout_s`` including connecting. Use from one event loop at a time;
    a new loop (tests, tools) starts a new set of connections."""

    def __init__(self, url: str, timeout_s: float, max_idle: int = 16):
        parsed = urlparse(url)
        if parsed.scheme not in ("redis", "rediss"):
            raise ValueError(f"REDIS_URL must use redis:// or rediss://, got {url!r}")
        self.host, self.port = parsed.hostname or "localhost", parsed.port or 6379
        self.db = int((parsed.path or "/0").lstrip("/") or 0)
        self.username = unquote(parsed.username) if parsed.username else None
        self.password = unquote(parsed.password) if parsed.password else None
        self.tls = parsed.scheme == "rediss"
        self.timeout_s, self.max_idle = timeout_s, max_idle
        self._idle: list[_Conn] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    async def _open(self) -> _Conn:
        reader, writer = await asyncio.open_connection(
            self.host, self.port, ssl=ssl.create_default_context() if self.tls else None)
        conn = _Conn(reader, writer)
        try:
            if self.password is not None:
                auth = ("AUTH", self.username, self.password) if self.username else \
                    ("AUTH", self.password)
                _raise((await _roundtrip(conn, hiredis.pack_command(auth), 1))[0])
            if self.db:
                _raise((await _roundtrip(conn, hiredis.pack_command(("SELECT", self.db)), 1))[0])
        except BaseException:
            conn.close()
            raise
        return conn

    async def execute(self, *args):
        """Send one command and return its reply (bytes, int, list or None).

        Raises ``ReplyError`` for an error reply, ``TimeoutError`` past the budget and
        ``OSError``/``ConnectionError`` when Redis is unreachable.
        """
        return _raise((await self.pipeline([args]))[0])

    async def pipeline(self, commands: list[tuple]) -> list:
        """Send several commands in one write and return their replies in order; an error
        reply is returned as a ``ReplyError`` in its place (the others still count).
        Raises like ``execute`` when Redis is unreachable or slower than the budget."""
        pack = hiredis.pack_command
        return await self.send(b"".join([pack(c) for c in commands]), len(commands))

    async def send(self, packed: bytes, n_replies: int, retry_stale: bool = False) -> list:
        """``pipeline`` for commands already packed (``hiredis.pack_command``), e.g. cached
        by a caller that sends the same commands again and again.

        ``retry_stale`` (for commands safe to send twice, e.g. reads): when a pooled
        connection turns out dead (Redis restarted while it sat idle), drop every idle
        connection, which died with it, and send once more on a new one within the budget.
        """
        if not n_replies:
            return []
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # asyncio connections cannot move between loops
            self._idle, self._loop = [], loop
        conn = self._idle.pop() if self._idle else None
        try:
            async with asyncio.timeout(self.timeout_s):
                if conn is None:
                    conn = await self._open()
                    replies = await _roundtrip(conn, packed, n_replies)
                else:
                    try:
                        replies = await _roundtrip(conn, packed, n_replies)
                    except ConnectionError:  # reset, broken pipe or closed by Redis
                        conn.close()
                        conn = None
                        self.drop_idle()
                        if not retry_stale:
                            raise
                        conn = await self._open()
                        replies = await _roundtrip(conn, packed, n_replies)
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        if len(self._idle) < self.max_idle:
            self._idle.append(conn)
        else:
            conn.close()
        return replies

    def drop_idle(self) -> None:
        """Close the idle connections (in-flight ones are kept until their call ends)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    async def close(self) -> None:
        """Close the idle connections (in-flight ones close when their call ends)."""
        self.drop_idle()


def _raise(reply):
    if isinstance(reply, ReplyError):
        raise reply
    return reply


async def _roundtrip(conn: _Conn, packed: bytes, n: int) -> list:
    conn.writer.write(packed)
    parser, replies = conn.parser, []
    while True:
        reply = parser.gets()
        while reply is not False:
            replies.append(reply)
            if len(replies) == n:
                return replies
            reply = parser.gets()
        data = await conn.reader.read(1 << 16)
        if not data:
            raise ConnectionError("Redis closed the connection")
        parser.feed(data)


class Script:
    """A Lua script run by its SHA1 (``EVALSHA``), loaded with ``EVAL`` when Redis does not
    know it yet (a fresh or restarted server)."""

    def __init__(self, source: str):
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, client: RespClient, keys: list, args: list):
        try:
            return await client.execute("EVALSHA", self.sha, len(keys), *keys, *args)
        except ReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            return await client.execute("EVAL", self.source, len(keys), *keys, *args)
