"""Slow clients over loopback (issue 15, finding 7): a connection that trickles its headers
or its body is answered 408 and closed; normal traffic is answered meanwhile. Bounded: 8
connections, each waited on for at most 60 s."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests.report import MEASURED

pytestmark = pytest.mark.service

BODY = b'{"pickup_zone_id": 74, "dropoff_zone_id": 236, "pickup_datetime": "2023-02-07T08:30"}'
WAIT_S = 60.0


def trickle(served, parts: list[bytes], gap_s: float = 0.5) -> tuple[bytes, float]:
    """Send ``parts`` one per ``gap_s`` then keep sending a byte per ``gap_s`` from the last
    part, until the server closes the connection; what it answered and after how long."""
    host, port = served.http.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=WAIT_S)
    start, answer = time.monotonic(), b""
    try:
        sock.settimeout(gap_s)
        pending = list(parts)
        filler = parts[-1][-1:]
        while time.monotonic() - start < WAIT_S:
            try:
                sock.sendall(pending.pop(0) if pending else filler)
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                continue
            except ConnectionResetError:
                break
            if not chunk:
                break
            answer += chunk
        # the rest of the answer, if any, until the server closes
        sock.settimeout(2.0)
        try:
            while chunk := sock.recv(4096):
                answer += chunk
        except (TimeoutError, ConnectionResetError, OSError):
            pass
        return answer, time.monotonic() - start
    finally:
        sock.close()


def test_slow_headers_are_cut_off(served):
    head = b"POST /predict HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n"
    # a header line that never ends: a byte per 0.5 s
    answer, seconds = trickle(served, [head, b"x-slow: a"])
    MEASURED["slow headers: closed after (s)"] = round(seconds, 1)
    assert seconds < WAIT_S, "the connection was never closed"
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"field": "headers"' in answer


def test_slow_bodies_are_cut_off_and_others_are_answered(served):
    head = (b"POST /predict HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n" % len(BODY))
    answer, seconds = trickle(served, [head, BODY[:10], b" "])
    MEASURED["slow body: closed after (s)"] = round(seconds, 1)
    assert seconds < WAIT_S, "the connection was never closed"
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"field": "body"' in answer
    r = httpx.post(f"{served.http}/predict", content=BODY,
                   headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 200, r.text


def test_an_idle_keep_alive_connection_still_serves_its_next_request(served):
    with httpx.Client(timeout=30) as client:
        for _ in range(3):
            r = client.post(f"{served.http}/predict", content=BODY,
                            headers={"content-type": "application/json"})
            assert r.status_code == 200, r.text
            time.sleep(1.0)  # under uvicorn's keep-alive timeout: the connection is reused
