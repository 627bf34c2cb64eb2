"""The HTTP endpoints of the drift monitor: ``/metrics`` (Prometheus) and ``/healthz``."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


def serve(host: str, port: int, registry: CollectorRegistry,
          health: Callable[[], tuple[bool, dict]]) -> ThreadingHTTPServer:
    """Start the server in a daemon thread and return it (``shutdown()`` stops it).

    ``/healthz`` answers 200 with a JSON body when ``health()`` says healthy, else 503 with the
    same body saying why (loop not started yet, Redis unreachable, or the loop is stuck).
    """

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                ok, details = health()
                self._send(200 if ok else 503, json.dumps(details).encode(), "application/json")
            else:
                self._send(404, b"not found: try /metrics or /healthz\n", "text/plain")

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt: str, *args) -> None:
            pass  # probes every few seconds would drown the log

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="drift-http", daemon=True).start()
    return server
