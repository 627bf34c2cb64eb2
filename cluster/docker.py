"""A private Docker daemon for building and testing the images, and a clean host afterwards.

Debian's ``docker.io`` dockerd (``make docker-tools`` installs it) runs with its own socket and
data root under ``.cluster/docker`` (built images persist between runs), its own exec root,
containerd namespace and bridge, so it never meets another dockerd on the same machine.

Network rule (../shared/k8s/README.md): containers reach the host and each other, nothing else.
dockerd therefore runs with ``--iptables=false --ip-forward=false --ip-masq=false`` (no NAT, no
sysctl change) and one FORWARD rule of ours rejects anything from the bridge that is not for
the bridge. ``down`` stops dockerd by its PID and removes the bridge and that rule again; the
host state found at ``up`` is written to ``host-state.json`` and checked on the way out.

    python -m cluster.docker up | down | status | env
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import typer

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".cluster" / "docker"
# Debian's client: its built-in BuildKit works without buildx (the machine's 28.x one does not).
DOCKER = os.environ.get("TAXI_DOCKER_CLIENT", "/usr/bin/docker")
DOCKERD = "/usr/sbin/dockerd"
# One id per checkout: two worktrees on one machine get distinct bridges and namespaces.
_ID = hashlib.sha256(str(ROOT).encode()).hexdigest()[:6]
BRIDGE = f"tsd{_ID}"
# Default runtime: runc behind a wrapper that drops negative oomScoreAdj values, which this VM
# cannot set (no CAP_SYS_RESOURCE) and kubelet asks for every pod sandbox (cluster/runtime/).
RUNC_WRAPPER = ROOT / "cluster" / "runtime" / "runc-wrapper"
RUNTIME = "taxi-runc"
RULE_COMMENT = f"taxi-serve-no-egress-{_ID}"

app = typer.Typer(add_completion=False, help=__doc__)


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=check)


def _alive(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"dockerd" in cmdline and not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        return "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True


def _subnet() -> ipaddress.IPv4Network:
    """A /24 for our bridge that no route on this host overlaps (172.31.20-219.0/24)."""
    routes = _run("ip", "-4", "route", "show", "table", "all").stdout
    used = []
    for line in routes.splitlines():
        word = line.split()[0] if line.split() else ""
        with contextlib.suppress(ValueError):
            if word not in ("default", "local", "broadcast"):
                used.append(ipaddress.ip_network(word, strict=False))
            elif word in ("local", "broadcast"):
                used.append(ipaddress.ip_network(line.split()[1], strict=False))
    start = int(_ID, 16) % 200
    for i in range(200):
        net = ipaddress.ip_network(f"172.31.{20 + (start + i) % 200}.0/24")
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError("no free 172.31.x.0/24 for the docker bridge")


@dataclass(frozen=True)
class Daemon:
    """Addresses of the running private dockerd."""

    pid: int
    socket: Path
    bridge: str
    gateway: str  # the host's address on the bridge: containers reach host services here

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host, "DOCKER_BUILDKIT": "1"}

    def docker(self, *args: str, check: bool = True, timeout: float | None = 600,
               **kw) -> subprocess.CompletedProcess:
        """Run the docker client against this daemon."""
        return subprocess.run([DOCKER, *args], env=self.env(), check=check, timeout=timeout,
                              capture_output=kw.pop("capture_output", True),
                              text=kw.pop("text", True), **kw)


def _state_file() -> Path:
    return STATE / "host-state.json"


def status() -> Daemon | None:
    """The daemon started by `up` in this checkout, if it is running."""
    try:
        state = json.loads(_state_file().read_text())
    except (OSError, ValueError):
        return None
    if not _alive(state["pid"]):
        return None
    return Daemon(state["pid"], Path(state["socket"]), state["bridge"], state["gateway"])


def _egress_rule(action: str) -> list[str]:
    # FORWARD only sees traffic leaving the bridge for another interface: the host itself
    # (INPUT) and container-to-container traffic stay allowed.
    return ["iptables", "-w", "5", action, "FORWARD", *(["1"] if action == "-I" else []),
            "-i", BRIDGE, "!", "-o", BRIDGE, "-m", "comment", "--comment", RULE_COMMENT,
            "-j", "REJECT"]


def _has_egress_rule() -> bool:
    return _run(*_egress_rule("-C"), check=False).returncode == 0


def up(timeout: float = 60.0) -> Daemon:
    """Start the private dockerd (or return the running one)."""
    running = status()
    if running:
        return running
    for tool in (DOCKER, DOCKERD):
        if not Path(tool).exists():
            raise RuntimeError(f"{tool} missing: run `make docker-tools` (Debian's docker.io)")
    STATE.mkdir(parents=True, exist_ok=True)
    sock = STATE / "docker.sock"
    exec_root = Path(f"/run/taxi-docker-{_ID}")
    net = _subnet()
    gateway = f"{net.network_address + 1}"
    forward = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
    _run("ip", "link", "del", BRIDGE, check=False)  # left over from a killed run
    _run("ip", "link", "add", BRIDGE, "type", "bridge")
    _run("ip", "addr", "add", f"{gateway}/{net.prefixlen}", "dev", BRIDGE)
    _run("ip", "link", "set", BRIDGE, "up")
    if not _has_egress_rule():
        _run(*_egress_rule("-I"))
    (STATE / "daemon.json").write_text("{}\n")  # never read /etc/docker/daemon.json
    log = open(STATE / "dockerd.log", "ab")
    proc = subprocess.Popen(
        [DOCKERD, "--config-file", str(STATE / "daemon.json"), "--host", f"unix://{sock}",
         "--data-root", str(STATE / "data"), "--exec-root", str(exec_root),
         "--pidfile", str(STATE / "dockerd.pid"), "--bridge", BRIDGE,
         "--iptables=false", "--ip-forward=false", "--ip-masq=false", "--ip6tables=false",
         "--add-runtime", f"{RUNTIME}={RUNC_WRAPPER}", "--default-runtime", RUNTIME,
         "--containerd-namespace", f"taxi-{_ID}",
         "--containerd-plugins-namespace", f"taxi-{_ID}-plugins"],
        stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    state = {"pid": proc.pid, "socket": str(sock), "bridge": BRIDGE, "gateway": gateway,
             "subnet": str(net), "exec_root": str(exec_root), "ip_forward": forward}
    _state_file().write_text(json.dumps(state, indent=2))
    daemon = Daemon(proc.pid, sock, BRIDGE, gateway)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            down()
            raise RuntimeError(f"dockerd exited {proc.returncode}; see {STATE / 'dockerd.log'}")
        if sock.exists() and daemon.docker("version", check=False, timeout=10).returncode == 0:
            return daemon
        time.sleep(0.3)
    down()
    raise RuntimeError(f"dockerd not ready in {timeout} s; see {STATE / 'dockerd.log'}")


def down(grace: float = 30.0) -> list[str]:
    """Stop the daemon by its PID and undo every host change; returns what was undone."""
    try:
        state = json.loads(_state_file().read_text())
    except (OSError, ValueError):
        return []
    done = []
    pid = state["pid"]
    if _alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        done.append(f"stopped dockerd {pid}")
    while _has_egress_rule():
        _run(*_egress_rule("-D"))
        done.append("removed the egress rule")
    if _run("ip", "link", "show", state["bridge"], check=False).returncode == 0:
        _run("ip", "link", "del", state["bridge"])
        done.append(f"deleted bridge {state['bridge']}")
    forward = Path("/proc/sys/net/ipv4/ip_forward")
    if forward.read_text().strip() != state["ip_forward"]:
        # dockerd runs with --ip-forward=false; something else changed it. Say so, leave it.
        done.append(f"note: ip_forward is now {forward.read_text().strip()}, "
                    f"was {state['ip_forward']} (not changed by this daemon)")
    exec_root = Path(state["exec_root"])
    # containerd leaves sockets and state directories there; nothing may still be mounted
    if exec_root.exists() and str(exec_root) not in Path("/proc/mounts").read_text():
        shutil.rmtree(exec_root, ignore_errors=True)
        done.append(f"removed {exec_root}")
    _state_file().unlink(missing_ok=True)
    return done


@contextlib.contextmanager
def running() -> Iterator[Daemon]:
    """The daemon for a block: started here and stopped at the end, or an `up` one left up."""
    already = status()
    daemon = already or up()
    try:
        yield daemon
    finally:
        if already is None:
            down()


@app.command("up")
def up_cmd() -> None:
    """Start the private dockerd; prints DOCKER_HOST."""
    print(up().host)


@app.command("down")
def down_cmd() -> None:
    """Stop it and restore the host (bridge, FORWARD rule)."""
    for line in down():
        print(line)


@app.command("status")
def status_cmd() -> None:
    """Exit 0 and print DOCKER_HOST when the daemon runs, 1 otherwise."""
    daemon = status()
    if daemon is None:
        raise typer.Exit(1)
    print(daemon.host)


@app.command("env")
def env_cmd() -> None:
    """Shell lines for `eval`: DOCKER_HOST and DOCKER_BUILDKIT for this daemon."""
    daemon = status()
    if daemon is None:
        raise typer.Exit(1)
    print(f"export DOCKER_HOST={daemon.host} DOCKER_BUILDKIT=1")


if __name__ == "__main__":
    app()
