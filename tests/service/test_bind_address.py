"""The bind address is a setting (issue 15, finding 8): 127.0.0.1 unless set, 0.0.0.0 in
images; both ports really listen there, and the log says where."""

from __future__ import annotations

import re

import psutil
import pytest
import yaml
from pydantic import ValidationError

from common.paths import ROOT
from common.settings import Settings

pytestmark = pytest.mark.service


def listening(port: int) -> set[str]:
    return {c.laddr.ip for c in psutil.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port}


def test_both_ports_listen_on_loopback_only(served):
    http_port = int(served.http.rsplit(":", 1)[1])
    grpc_port = int(served.grpc.rsplit(":", 1)[1])
    assert listening(http_port) == {"127.0.0.1"}
    assert listening(grpc_port) == {"127.0.0.1"}
    logged = re.findall(r"gRPC TripPredictor serving on (\S+)", served.log())
    assert logged and set(logged) == {f"127.0.0.1:{grpc_port}"}, logged


def test_the_default_is_loopback_and_images_set_every_interface(monkeypatch):
    from service.__main__ import serve_command

    monkeypatch.delenv("TAXI_HOST", raising=False)
    cmd = serve_command(Settings())
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    monkeypatch.setenv("TAXI_HOST", "0.0.0.0")
    cmd = serve_command(Settings())
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"
    monkeypatch.setenv("TAXI_HOST", "every-interface")
    with pytest.raises(ValidationError, match="host"):
        Settings()
    bento_env = {e["name"]: e["value"] for e in
                 yaml.safe_load((ROOT / "bentofile.yaml").read_text())["envs"]}
    assert bento_env["TAXI_HOST"] == "0.0.0.0"
