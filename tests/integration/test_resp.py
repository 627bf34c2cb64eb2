"""The request path's small Redis client (service/resp.py) against a real Redis server."""

import asyncio
import socket
import time

import pytest
import redis

from service.resp import ReplyError, RespClient, Script

pytestmark = pytest.mark.integration


def run(coro):
    return asyncio.run(coro)


def test_commands_pipelines_and_error_replies(own_redis):
    async def go():
        client = RespClient(own_redis.url, timeout_s=1.0)
        assert await client.execute("SET", "k", b"v\x00\xff") == b"OK"
        replies = await client.pipeline([("GET", "k"), ("INCR", "k"), ("HMGET", "h", "a", "b"),
                                         ("PING",)])
        assert replies[0] == b"v\x00\xff" and replies[2] == [None, None] and replies[3] == b"PONG"
        assert isinstance(replies[1], ReplyError)  # in its place; the others still answer
        with pytest.raises(ReplyError, match="not an integer"):
            await client.execute("INCR", "k")
        assert len(client._idle) == 1  # one connection, reused after an error reply
        await client.close()
    run(go())


def test_password_and_database_from_the_url(own_redis):
    admin = redis.Redis.from_url(own_redis.url)
    admin.config_set("requirepass", "s3cret")
    url = f"redis://:s3cret@127.0.0.1:{own_redis.port}/3"

    async def go():
        client = RespClient(url, timeout_s=1.0)
        await client.execute("SET", "in-db-3", "yes")
        await client.close()
        with pytest.raises(ReplyError):
            await RespClient(f"redis://:wrong@127.0.0.1:{own_redis.port}/0", 1.0).execute("PING")
    run(go())
    assert redis.Redis.from_url(url).get("in-db-3") == b"yes"


def test_unreachable_redis_fails_fast_then_recovers_without_a_new_client(own_redis):
    async def go():
        client = RespClient(own_redis.url, timeout_s=0.2)
        assert await client.execute("PING") == b"PONG"
        own_redis.stop()
        start = time.monotonic()
        with pytest.raises(OSError):  # ConnectionError is an OSError
            await client.execute("PING")
        assert time.monotonic() - start < 0.5
        own_redis.start()
        assert await client.execute("PING") == b"PONG"
        await client.close()
    run(go())


def test_a_server_that_never_answers_times_out_within_the_budget():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]

    async def go():
        client = RespClient(f"redis://127.0.0.1:{port}/0", timeout_s=0.1)
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await client.execute("PING")
        assert time.monotonic() - start < 0.5
        assert client._idle == []  # a connection with a reply pending is never reused
    try:
        run(go())
    finally:
        listener.close()


def test_script_loads_itself_when_redis_does_not_know_it(own_redis):
    script = Script("return {KEYS[1], ARGV[1]}")

    async def go():
        client = RespClient(own_redis.url, timeout_s=1.0)
        assert await script(client, ["a"], ["b"]) == [b"a", b"b"]
        await client.execute("SCRIPT", "FLUSH")  # e.g. a restarted Redis
        assert await script(client, ["c"], ["d"]) == [b"c", b"d"]
        await client.close()
    run(go())
