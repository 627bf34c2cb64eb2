"""The benchmark harness's own parts: message framing for the gRPC generator, JSON vectors
for the peers, py-spy stack sorting, and the wrk script against a loopback server."""

import json
import math
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from benchmarks import wrk
from benchmarks.peer_inputs import nulls, read_messages, write_lines, write_messages
from benchmarks.profile_spy import breakdown, stage_of


@pytest.mark.unit
def test_messages_read_back_as_written_including_empty_and_binary(tmp_path):
    msgs = [b"", b"\x00\xff\x10", bytes(range(256)) * 3]
    assert read_messages(write_messages(tmp_path / "m", msgs)) == msgs


@pytest.mark.unit
def test_missing_features_go_as_json_null_and_come_back_as_nan():
    row = nulls(np.array([1.5, np.nan, 3.0]))
    assert row == [1.5, None, 3.0]
    back = np.asarray(json.loads(json.dumps(row)), dtype="float64")
    assert back[0] == 1.5 and math.isnan(back[1])


@pytest.mark.unit
def test_a_sample_counts_for_its_innermost_known_stage():
    loop = "run (asyncio/events.py:80);__call__ (bentoml/_internal/server.py:10)"
    assert stage_of(loop + ";predict (service/http_app.py:5);validate (pydantic/main.py:1)") \
        == "validation and JSON (pydantic, http_app)"
    assert stage_of(loop + ";answer (service/predictor.py:9);predict (training/compile.py:3)") \
        == "models: both compiled boosters"
    assert stage_of(loop) == "BentoML and Starlette ASGI layers"
    assert stage_of("worker (threading.py:1)") == "other (threads, GC, imports)"


@pytest.mark.unit
def test_shares_come_from_sample_counts(tmp_path):
    raw = tmp_path / "raw.txt"
    raw.write_text("a (service/resp.py:1) 3\nb (prometheus_client/x.py:2) 1\n")
    assert breakdown(raw) == {"Redis: features (resp.py, decode)": 0.75,
                              "metrics (prometheus-client)": 0.25}


class Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as wrk expects
    seen: list = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Recorder.seen.append((self.headers["Content-Type"], body))
        status = 200 if b"ok" in body else 500
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk not installed (make bench-peers)")
def test_wrk_posts_every_body_in_turn_and_counts_server_errors(tmp_path):
    lines = [{"ok": 1}, {"ok": 2}, {"bad": 3}]
    bodies = write_lines(tmp_path / "b.jsonl", lines)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        row = wrk.run(f"http://127.0.0.1:{server.server_port}/p", bodies, 1, 1)
    finally:
        server.shutdown()
        server.server_close()
    sent = [json.loads(b) for _, b in Recorder.seen]
    assert {ct for ct, _ in Recorder.seen} == {"application/json"}
    # the file's lines in turn, round and round (wrk takes one request to check the script,
    # so the first one sent may be the second line)
    start = lines.index(sent[0])
    assert sent == [lines[(start + i) % 3] for i in range(len(sent))]
    # wrk stops at its deadline: a request in flight then is sent but not counted
    assert len(sent) - 1 <= row["n"] <= len(sent) and row["n"] > 3
    assert row["errors"] == sum(1 for b in sent[:row["n"]] if "bad" in b) > 0
