"""Start and stop a local Kubernetes control plane on 127.0.0.1 (a real node's: on its bridge).

What runs (all real binaries, installed into .tools/bin by `make k8s-tools`, mk/k8s.mk):
  etcd -> kube-apiserver (token auth, RBAC, service-account tokens)
       -> kube-controller-manager (deployments, replicasets, jobs, cronjobs, endpoints, ...)
       -> the node, one of:
          real: cluster/node.py, kubelet + kube-scheduler + kube-proxy on a private dockerd;
                containers run, probes run (`make node-tools`);
          sim:  cluster/nodesim.py registers one Node, binds pods and reports them
                Running/Ready; no container ever runs (API-only tests).
Both get hostPath volumes for claims from nodesim.py's provisioner.

    python cluster/controlplane.py up   [--dir .cluster] [--node real|sim]
    python cluster/controlplane.py down [--dir .cluster]

Binaries are looked up in .tools/bin (filled by `make k8s-tools`), then on PATH.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `cluster` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from cluster import node  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SERVICE_CIDR = "10.0.0.0/24"
# Only the controllers the chart tests need; each one costs CPU on a 2-core machine.
CONTROLLERS = (
    "deployment,replicaset,garbagecollector,endpoint,endpointslice,job,cronjob,"
    "serviceaccount,serviceaccount-token,namespace,persistentvolume-binder,pvc-protection,"
    "pv-protection,disruption"
)
# A real kubelet registers its Node tainted not-ready; this controller lifts the taint.
REAL_NODE_CONTROLLERS = ",nodelifecycle"


def find_binary(name: str) -> str:
    local = REPO / ".tools" / "bin" / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if not found:
        sys.exit(f"{name} not found: run `make k8s-tools` first")
    return found


def etcd_speedups() -> list[str]:
    """Throw-away data: skipping fsync keeps a slow disk out of every API write (etcd >= 3.5;
    Debian's etcd-server 3.4 lacks the flag and simply runs without it)."""
    out = subprocess.run([find_binary("etcd"), "--help"], capture_output=True, text=True,
                         check=False)
    return ["--unsafe-no-fsync"] if "--unsafe-no-fsync" in out.stdout + out.stderr else []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(pki: Path, address: str) -> None:
    """A throw-away CA, an API serving cert for `address` (and the `kubernetes` Service's
    ClusterIP and names), and the service-account key pair."""
    pki.mkdir(parents=True, exist_ok=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
            "-subj", "/CN=taxi-serve-local-ca", "-keyout", "ca.key", "-out", "ca.crt", cwd=pki)
    ips = sorted({"127.0.0.1", address, "10.0.0.1"})
    (pki / "san.cnf").write_text(
        "subjectAltName=" + ",".join(f"IP:{ip}" for ip in ips) + ",DNS:localhost,"
        "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=kube-apiserver",
            "-keyout", "apiserver.key", "-out", "apiserver.csr", cwd=pki)
    openssl("x509", "-req", "-in", "apiserver.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "30", "-extfile", "san.cnf", "-out", "apiserver.crt",
            cwd=pki)
    openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


def write_kubeconfig(path: Path, server: str, ca: Path, user: str, token: str) -> None:
    # JSON is valid YAML, and kubectl/helm/the Python client all read it.
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "local",
        "clusters": [{"name": "local", "cluster": {
            "server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": user}}],
    }, indent=2))
    path.chmod(0o600)


def spawn(cmd: list[str], log: Path) -> int:
    # A new session, so that `make cluster-up` can exit and leave the plane running,
    # and so that `down` can signal each component's whole process group.
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    return proc.pid


def wait_for(what: str, check, timeout: float, logs: Path) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:  # noqa: BLE001 - not up yet; any error means "try again"
            last = exc
        time.sleep(0.25)
    raise RuntimeError(f"{what} not ready after {timeout:.0f}s (last error: {last}); "
                       f"see logs in {logs}")


def https_ok(url: str, ca: Path, token: str) -> bool:
    ctx = ssl.create_default_context(cafile=str(ca))
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, context=ctx, timeout=2) as resp:
        return resp.status == 200


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def up(state_dir: Path, node_kind: str = "sim") -> dict:
    state_file = state_dir / "state.json"
    if state_file.exists():
        state = json.loads(state_file.read_text())
        if state["pids"] and all(alive(pid) for pid in state["pids"].values()):
            return state
        down(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    pki, logs = state_dir / "pki", state_dir / "logs"
    logs.mkdir(exist_ok=True)
    pids: dict[str, int] = {}
    state: dict = {"pids": pids, "node": node_kind}

    def save() -> None:
        state_file.write_text(json.dumps(state, indent=2))

    save()  # from here on, down() can undo whatever up() got to
    # The API server's address. A real node's pods reach it through the `kubernetes` Service
    # (retrain job, Prometheus discovery), whose endpoint is this address: the bridge gateway,
    # which only this host and its pods can reach. 127.0.0.1 would leave the Service without
    # a usable endpoint; 0.0.0.0 would expose the API beyond the host.
    address = "127.0.0.1"
    try:
        if node_kind == "real":
            address = node.prepare(state_dir)
        make_pki(pki, address)
    except BaseException:
        down(state_dir)
        raise
    admin_token, cm_token = secrets.token_hex(16), secrets.token_hex(16)
    node_tokens, node_lines = node.token_lines() if node_kind == "real" else ({}, "")
    # The controller-manager gets system:masters: simpler than per-controller credentials,
    # and acceptable for a throw-away local plane.
    (pki / "tokens.csv").write_text(
        f'{admin_token},admin,admin,"system:masters"\n'
        f'{cm_token},system:kube-controller-manager,kcm,"system:masters"\n' + node_lines)
    etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
    server = f"https://{address}:{api_port}"
    state.update(server=server, kubeconfig=str(state_dir / "kubeconfig"))

    try:
        pids["etcd"] = spawn([
            find_binary("etcd"), "--name", "local", "--data-dir", str(state_dir / "etcd"),
            "--listen-client-urls", f"http://127.0.0.1:{etcd_port}",
            "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
            "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-cluster", f"local=http://127.0.0.1:{peer_port}",
            "--log-level", "warn", *etcd_speedups(),
        ], logs / "etcd.log")
        save()
        pids["kube-apiserver"] = spawn([
            find_binary("kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            f"--bind-address={address}", f"--advertise-address={address}",
            f"--secure-port={api_port}", "--insecure-port=0",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--token-auth-file={pki / 'tokens.csv'}",
            # Node: the kubelet may read what its own pods use, and nothing else.
            f"--authorization-mode={'Node,RBAC' if node_kind == 'real' else 'RBAC'}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--allow-privileged=false", "--profiling=false", "--v=1",
        ], logs / "kube-apiserver.log")
        save()
        wait_for("kube-apiserver", lambda: https_ok(f"{server}/readyz", pki / "ca.crt",
                                                    admin_token), 60, logs)
        write_kubeconfig(state_dir / "kubeconfig", server, pki / "ca.crt", "admin", admin_token)
        write_kubeconfig(state_dir / "controller-manager.kubeconfig", server, pki / "ca.crt",
                         "kube-controller-manager", cm_token)
        pids["kube-controller-manager"] = spawn([
            find_binary("kube-controller-manager"),
            f"--kubeconfig={state_dir / 'controller-manager.kubeconfig'}",
            "--port=0", "--secure-port=0", "--leader-elect=false",
            f"--controllers={CONTROLLERS}"
            f"{REAL_NODE_CONTROLLERS if node_kind == 'real' else ''}",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            "--use-service-account-credentials=false", "--v=1",
        ], logs / "kube-controller-manager.log")
        save()
        if node_kind == "real":
            pids.update(node.up(state_dir, server, pki / "ca.crt", node_tokens, spawn,
                                free_port, write_kubeconfig))
            save()
        pids["nodesim"] = spawn([
            sys.executable, str(REPO / "cluster" / "nodesim.py"),
            "--kubeconfig", str(state_dir / "kubeconfig"),
            "--pv-root", str(state_dir / "volumes"),
            *(["--volumes-only"] if node_kind == "real" else []),
        ], logs / "nodesim.log")
        save()
        wait_for(f"{node_kind} node", lambda: node_ready(state_dir / "kubeconfig"), 60, logs)
        wait_for("default service account", lambda: default_sa(state_dir / "kubeconfig"), 60,
                 logs)
    except BaseException:
        down(state_dir)
        raise
    return state


def kubectl_ok(kubeconfig: Path, *args: str) -> str:
    out = subprocess.run(["kubectl", f"--kubeconfig={kubeconfig}", *args],
                         capture_output=True, text=True, timeout=10, check=False)
    return out.stdout if out.returncode == 0 else ""


def node_ready(kubeconfig: Path) -> bool:
    return "True" in kubectl_ok(kubeconfig, "get", "nodes", "-o",
                                "jsonpath={.items[*].status.conditions[?(@.type=='Ready')].status}")


def default_sa(kubeconfig: Path) -> bool:
    return bool(kubectl_ok(kubeconfig, "-n", "default", "get", "serviceaccount", "default",
                           "-o", "name"))


def down(state_dir: Path) -> None:
    state_file = state_dir / "state.json"
    if not state_file.exists():
        return
    state = json.loads(state_file.read_text())
    # The real node first (it needs nothing from the plane to stop), then the rest in reverse
    # start order: nodesim and controllers first, etcd last.
    node_error = None
    try:
        node.down(state_dir)
    except RuntimeError as exc:  # the host check failed: stop the plane anyway, then say so
        node_error = exc
    node_pids = set(node.PROCESSES)
    state["pids"] = {k: v for k, v in state["pids"].items() if k not in node_pids}
    for pid in reversed(list(state["pids"].values())):
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + 15
    for pid in state["pids"].values():
        while alive(pid) and time.monotonic() < deadline:
            reap(pid)
            time.sleep(0.1)
        if alive(pid):
            os.killpg(pid, signal.SIGKILL)
        reap(pid)
    for name in ("etcd", "pki", "volumes", "state.json", "kubeconfig",
                 "controller-manager.kubeconfig"):
        path = state_dir / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()
    if node_error is not None:
        raise node_error


def reap(pid: int) -> None:
    """Collect our own exited children so that they do not linger as zombies."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--dir", default=str(REPO / ".cluster"), help="state directory")
    parser.add_argument("--node", choices=["real", "sim"], default="sim",
                        help="real: kubelet on a private dockerd; sim: API-only node simulator")
    args = parser.parse_args()
    state_dir = Path(args.dir).resolve()
    if args.action == "up":
        started = time.monotonic()
        state = up(state_dir, args.node)
        print(f"{args.node} cluster ready in {time.monotonic() - started:.1f}s "
              f"at {state['server']}")
        print(f"export KUBECONFIG={state['kubeconfig']}")
    else:
        down(state_dir)


if __name__ == "__main__":
    main()
