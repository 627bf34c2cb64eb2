"""The bind address is a setting (issue 15, finding 8): 127.0.0.1 unless set, 0.0.0.0 in
images; both ports really listen there, and `python -m service` prints that address."""

from __future__ import annotations

import ipaddress

import psutil
import pytest
import yaml
from pydantic import ValidationError

from common.paths import ROOT
from common.settings import Settings

pytestmark = pytest.mark.service


def listening(port: int) -> set[str]:
    """The addresses listening on ``port`` (an IPv4-mapped IPv6 address as its IPv4 one:
    gRPC binds 127.0.0.1 on a dual-stack socket, ::ffff:127.0.0.1)."""
    out = set()
    for c in psutil.net_connections(kind="inet"):
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port:
            ip = ipaddress.ip_address(c.laddr.ip)
            out.add(str(getattr(ip, "ipv4_mapped", None) or ip))
    return out


def test_both_ports_listen_on_loopback_only(served):
    http_port = int(served.http.rsplit(":", 1)[1])
    grpc_port = int(served.grpc.rsplit(":", 1)[1])
    assert listening(http_port) == {"127.0.0.1"}
    assert listening(grpc_port) == {"127.0.0.1"}


def test_the_default_is_loopback_and_images_set_every_interface(monkeypatch):
    from service.__main__ import addresses, serve_command

    for name in ("TAXI_HOST", "TAXI_HTTP_PORT", "TAXI_GRPC_PORT"):
        monkeypatch.delenv(name, raising=False)
    cmd = serve_command(Settings())
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert "http://127.0.0.1:3000/" in addresses(Settings())
    monkeypatch.setenv("TAXI_HOST", "0.0.0.0")
    cmd = serve_command(Settings())
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"
    # what `python -m service` prints is the address it binds
    assert "http://0.0.0.0:3000/" in addresses(Settings())
    assert "gRPC 0.0.0.0:50051" in addresses(Settings())
    monkeypatch.setenv("TAXI_HOST", "every-interface")
    with pytest.raises(ValidationError, match="host"):
        Settings()
    bento_env = {e["name"]: e["value"] for e in
                 yaml.safe_load((ROOT / "bentofile.yaml").read_text())["envs"]}
    assert bento_env["TAXI_HOST"] == "0.0.0.0"
