"""A real Kubernetes node on 127.0.0.1, joined to the control plane of cluster/controlplane.py.

What runs (binaries from `make node-tools`, mk/k8s.mk; facts in ../shared/k8s/README.md):
  * the private dockerd of cluster/docker.py, whose default runtime is runc behind
    cluster/runtime/runc-wrapper (this VM cannot set negative oom_score_adj);
  * kubelet 1.20 with dockershim on that dockerd, node name and InternalIP 127.0.0.1, every
    directory it writes under the state directory, and a pause image built here from
    cluster/runtime/pause.c (kubelet's default one lives in a registry);
  * kube-scheduler, and kube-proxy in iptables mode with --masquerade-all: pod -> Service ->
    pod on the same bridge then returns through the host, which needs ip_forward=1;
  * cluster DNS for Service names: dnsmasq on the bridge's gateway address (cluster/dns.py).

Host hygiene: hoststate.record() runs first; down() stops our PIDs, removes the pods'
containers, mounts, KUBE-* chains, cgroups and pod logs, restores the sysctls, and writes
host-check.json (the differences left, [] when clean). Pods reach the bridge and the host only:
a mangle FORWARD rule drops everything from the bridge that leaves it, ahead of any ACCEPT that
kube-proxy puts in filter FORWARD. The cluster DNS answers cluster.local only, and pods with
dnsPolicy Default get 127.0.0.1 as their resolver, so no lookup leaves the host.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from cluster import dns, docker, hoststate

NODE = "127.0.0.1"
PAUSE_IMAGE = "taxi-serve/pause:local"
RUNTIME_DIR = docker.ROOT / "cluster" / "runtime"
COMMENT = f"taxi-serve-node-egress-{docker._ID}"  # noqa: SLF001 - one id per checkout
# Every process the node starts (controlplane.py leaves stopping them to down()).
PROCESSES = ("kubelet", "kube-scheduler", "kube-proxy", "dns-sync", "dnsmasq")
USERS = {  # component -> (user, groups) in the API server's token file
    "kubelet": (f"system:node:{NODE}", "system:nodes"),
    "kube-scheduler": ("system:kube-scheduler", ""),
    "kube-proxy": ("system:kube-proxy", ""),
}


def token_lines() -> tuple[dict[str, str], str]:
    """Fresh tokens for the node's components and their lines for --token-auth-file."""
    tokens = {name: secrets.token_hex(16) for name in USERS}
    lines = "".join(f'{tokens[n]},{user},{n},"{groups}"\n' if groups else
                    f"{tokens[n]},{user},{n}\n" for n, (user, groups) in USERS.items())
    return tokens, lines


def _egress_rule(action: str, bridge: str) -> list[str]:
    return ["iptables", "-w", "5", "-t", "mangle", action, "FORWARD",
            *(["1"] if action == "-I" else []), "-i", bridge, "!", "-o", bridge,
            "-m", "comment", "--comment", COMMENT, "-j", "DROP"]


def pause_image(daemon: docker.Daemon, work: Path) -> str:
    if daemon.docker("image", "inspect", PAUSE_IMAGE, check=False).returncode == 0:
        return PAUSE_IMAGE
    root = work / "pause-root"
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["gcc", "-Os", "-static", "-o", str(root / "pause"),
                    str(RUNTIME_DIR / "pause.c")], check=True)
    tar = subprocess.Popen(["tar", "--numeric-owner", "--owner=0", "--group=0", "-C", str(root),
                            "-c", "pause"], stdout=subprocess.PIPE)
    subprocess.run([docker.DOCKER, "import", "-c", 'ENTRYPOINT ["/pause"]', "-", PAUSE_IMAGE],
                   stdin=tar.stdout, env=daemon.env(), check=True, capture_output=True)
    tar.wait()
    return PAUSE_IMAGE


def _daemon() -> tuple[docker.Daemon, bool]:
    """The private dockerd with the wrapper as default runtime; True when started here."""
    daemon = docker.status()
    started = daemon is None
    daemon = daemon or docker.up()
    runtime = daemon.docker("info", "-f", "{{.DefaultRuntime}}").stdout.strip()
    if runtime != docker.RUNTIME:
        raise RuntimeError(f"the running dockerd uses runtime {runtime!r}, not {docker.RUNTIME}: "
                           "stop it with `make docker-down` and start the cluster again")
    return daemon, started


def prepare(state_dir: Path) -> str:
    """Record the host, then start the private dockerd (before the API server: the API server
    listens on the bridge's gateway, the one host address pods can reach). Returns it."""
    work = state_dir / "node"
    work.mkdir(parents=True, exist_ok=True)
    state: dict = {"pids": {}}
    state_file = work / "state.json"
    state["host"] = hoststate.record(work / "host-before.json", COMMENT, state_dir)
    state_file.write_text(json.dumps(state, indent=2))
    daemon, state["started_docker"] = _daemon()
    state["bridge"] = daemon.bridge
    state_file.write_text(json.dumps(state, indent=2))
    return daemon.gateway


def up(state_dir: Path, server: str, ca: Path, tokens: dict[str, str], spawn, free_port,
       write_kubeconfig) -> dict[str, int]:
    """Start the node's components after prepare(); returns their PIDs (also kept in
    node/state.json)."""
    work = state_dir / "node"
    logs = state_dir / "logs"
    state_file = work / "state.json"
    state: dict = json.loads(state_file.read_text())

    def save() -> None:
        state_file.write_text(json.dumps(state, indent=2))

    daemon = docker.status()
    if daemon is None:
        raise RuntimeError("the node's dockerd stopped after prepare()")
    pause_image(daemon, work)
    if hoststate.sysctls()["net/ipv4/ip_forward"] != "1":
        hoststate.write_sysctl("net/ipv4/ip_forward", "1")
    subprocess.run(_egress_rule("-I", daemon.bridge), check=True, capture_output=True)
    for name in USERS:
        write_kubeconfig(work / f"{name}.kubeconfig", server, ca, name, tokens[name])
    (work / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    hosts = work / "dns-hosts"
    hosts.mkdir(exist_ok=True)
    state["pids"]["dns-sync"] = spawn([
        sys.executable, str(RUNTIME_DIR.parent / "dns.py"), "--kubeconfig",
        str(state_dir / "kubeconfig"), "--hosts-dir", str(hosts)], logs / "dns-sync.log")
    state["pids"]["dnsmasq"] = spawn(
        dns.dnsmasq_cmd(daemon.gateway, hosts, work / "dnsmasq.pid"), logs / "dnsmasq.log")
    save()
    kubelet_port = free_port()
    state["pids"]["kubelet"] = spawn([
        _binary("kubelet"), f"--kubeconfig={work / 'kubelet.kubeconfig'}",
        "--container-runtime=docker", f"--docker-endpoint={daemon.host}",
        f"--container-runtime-endpoint=unix://{work / 'dockershim.sock'}",
        f"--pod-infra-container-image={PAUSE_IMAGE}", "--fail-swap-on=false",
        "--cgroup-driver=cgroupfs", f"--hostname-override={NODE}", f"--address={NODE}",
        f"--port={kubelet_port}", "--read-only-port=0", "--healthz-port=0",
        "--image-gc-high-threshold=100", "--image-gc-low-threshold=99",
        "--register-node=true", "--enable-controller-attach-detach=false",
        f"--root-dir={work / 'kubelet'}", f"--cert-dir={work / 'kubelet-pki'}",
        f"--experimental-dockershim-root-directory={work / 'dockershim'}",
        f"--volume-plugin-dir={work / 'volume-plugins'}",
        f"--resolv-conf={work / 'resolv.conf'}",
        f"--cluster-dns={daemon.gateway}", f"--cluster-domain={dns.DOMAIN}",
        "--eviction-hard=memory.available<256Mi,nodefs.available<2%,imagefs.available<2%",
        "--node-labels=topology.kubernetes.io/zone=local-a", "--v=1",
    ], logs / "kubelet.log")
    save()
    state["pids"]["kube-scheduler"] = spawn([
        _binary("kube-scheduler"), f"--kubeconfig={work / 'kube-scheduler.kubeconfig'}",
        f"--authentication-kubeconfig={work / 'kube-scheduler.kubeconfig'}",
        f"--authorization-kubeconfig={work / 'kube-scheduler.kubeconfig'}",
        "--leader-elect=false", "--port=0", "--bind-address=127.0.0.1",
        f"--secure-port={free_port()}", "--v=1",
    ], logs / "kube-scheduler.log")
    save()
    # conntrack flags at 0: kube-proxy leaves the host's conntrack sysctls alone.
    state["pids"]["kube-proxy"] = spawn([
        _binary("kube-proxy"), f"--kubeconfig={work / 'kube-proxy.kubeconfig'}",
        f"--hostname-override={NODE}", "--proxy-mode=iptables", "--masquerade-all",
        f"--healthz-bind-address=127.0.0.1:{free_port()}",
        f"--metrics-bind-address=127.0.0.1:{free_port()}",
        "--conntrack-max-per-core=0", "--conntrack-min=0",
        "--conntrack-tcp-timeout-established=0", "--conntrack-tcp-timeout-close-wait=0",
        "--v=1",
    ], logs / "kube-proxy.log")
    save()
    return state["pids"]


def _binary(name: str) -> str:
    local = docker.ROOT / ".tools" / "bin" / name
    if not local.exists():
        raise RuntimeError(f"{local} missing: run `make node-tools`")
    return str(local)


def _stop(pid: int, grace: float = 15.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            if not Path(f"/proc/{pid}").exists():
                return
        time.sleep(0.1)
    os.killpg(pid, signal.SIGKILL)


def down(state_dir: Path) -> list[str]:
    """Stop the node and restore the host; returns what was done. Raises if the host is not
    back to its recorded state (the differences are in node/host-check.json)."""
    work = state_dir / "node"
    state_file = work / "state.json"
    if not state_file.exists():
        return []
    state = json.loads(state_file.read_text())
    done = []
    for name in ("kube-proxy", "kube-scheduler", "kubelet", "dnsmasq", "dns-sync"):
        if name in state["pids"]:
            _stop(state["pids"][name])
            done.append(f"stopped {name} {state['pids'][name]}")
    daemon = docker.status()
    if daemon is not None:
        ids = daemon.docker("ps", "-aq", "--filter", "label=io.kubernetes.pod.uid").stdout.split()
        if ids:
            daemon.docker("rm", "-f", "-v", *ids, check=False, timeout=120)
            done.append(f"removed {len(ids)} pod containers")
    kubelet_pods = work / "kubelet" / "pods"
    uids = {p.name for p in kubelet_pods.iterdir()} if kubelet_pods.is_dir() else set()
    done += hoststate.unmount_under(state_dir)
    if "kube-proxy" in state["pids"]:
        # kube-proxy's own cleanup of its rules, then whatever kubelet left.
        subprocess.run([_binary("kube-proxy"), "--cleanup", "--proxy-mode=iptables"],
                       capture_output=True, timeout=60, check=False)
    done += hoststate.remove_kube_chains()
    if state.get("bridge"):
        while subprocess.run(_egress_rule("-C", state["bridge"]),
                             capture_output=True).returncode == 0:
            subprocess.run(_egress_rule("-D", state["bridge"]), capture_output=True)
            done.append("removed the node's egress rule")
    before = state["host"]
    done += hoststate.remove_cgroups()
    done += hoststate.remove_pod_logs(before["logs"], uids)
    done += hoststate.restore(before)
    if state.get("started_docker"):
        done += docker.down()
    diffs = hoststate.check(before, COMMENT, state_dir)
    (work / "host-check.json").write_text(json.dumps({"differences": diffs}, indent=2))
    state_file.unlink()
    if diffs:
        raise RuntimeError("the host is not as the node found it:\n  " + "\n  ".join(diffs))
    return done
