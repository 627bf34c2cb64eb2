"""Header and body read timeouts for BentoML's uvicorn server (issue 15, finding 7).

uvicorn closes idle keep-alive connections, but has no timeout while a request is being read:
a client that sends its headers a byte at a time holds a connection (and a file descriptor)
forever, and one that trickles its body holds a request until BentoML's 10 s traffic timeout.
BentoML builds uvicorn's ``Config`` itself, without a way to pass a protocol class, so
``install()`` points uvicorn's ``"auto"`` HTTP protocol at this subclass of its httptools
protocol; BentoML's worker loads the service (and so calls ``install``) before it builds the
``Config``. A request whose headers are not complete ``header_timeout_s`` after the
connection opened (or after its first byte, on a reused connection), or whose body is not
complete ``body_timeout_s`` after its headers, is answered 408 and the connection is closed.
"""

from __future__ import annotations

import json

from uvicorn import config as uvicorn_config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

PROTOCOL = "service.slow_clients:ReadTimeoutProtocol"


def _response(what: str, seconds: float) -> bytes:
    body = json.dumps({"error": f"request {what} not received within {seconds:g} s",
                       "detail": [{"field": what, "rule": f"must arrive within {seconds:g} s"}]})
    return (f"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n{body}").encode()


class ReadTimeoutProtocol(HttpToolsProtocol):
    header_timeout_s: float = 5.0
    body_timeout_s: float = 10.0

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self._read_timer = None
        super().connection_made(transport)
        self._arm(self.header_timeout_s, "headers")

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm(self.header_timeout_s, "headers")

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._arm(self.body_timeout_s, "body")

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def _arm(self, seconds: float, what: str) -> None:
        self._disarm()
        self._read_timer = self.loop.call_later(seconds, self._expired, what, seconds)

    def _disarm(self) -> None:
        if getattr(self, "_read_timer", None) is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _expired(self, what: str, seconds: float) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        cycle = self.cycle  # for slow headers: the previous request's, if any
        answer = cycle is None or (cycle.response_complete if what == "headers"
                                   else not cycle.response_started)
        if answer:  # else an answer is on its way: just close
            self.transport.write(_response(what, seconds))
        self.logger.info("closed a connection from %s: %s not received within %g s",
                         self.client, what, seconds)
        self.transport.close()


def install(header_timeout_s: float, body_timeout_s: float) -> None:
    """Make uvicorn's default HTTP protocol the one with read timeouts."""
    ReadTimeoutProtocol.header_timeout_s = header_timeout_s
    ReadTimeoutProtocol.body_timeout_s = body_timeout_s
    uvicorn_config.HTTP_PROTOCOLS["auto"] = PROTOCOL
