"""What a real node changes on the host, recorded before it starts and checked after it stops.

kubelet, kube-proxy and the pod network touch shared host state (../shared/k8s/README.md):
sysctls, iptables chains, cgroups, mounts and pod log files. `record` writes what is there
before; `restore` puts back what the node changed; `check` compares the host with the record
and returns the differences (empty means the host is as it was).

Only what this checkout's node owns is compared: the KUBE-* chains (no other kubelet runs on
these machines), rules carrying our comment, mounts under our state directory, and the pod
log entries of our pods. Other helpers' dockerds may add their own rules meanwhile.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
from pathlib import Path

# Every sysctl kubelet (setupKernelTunables), kube-proxy (route_localnet, conntrack) and the
# node's pod network (ip_forward) may write.
SYSCTLS = (
    "vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes", "net/ipv4/ip_forward",
    "net/ipv4/conf/all/route_localnet", "net/netfilter/nf_conntrack_max",
    "net/netfilter/nf_conntrack_tcp_timeout_established",
    "net/netfilter/nf_conntrack_tcp_timeout_close_wait",
    "net/bridge/bridge-nf-call-iptables",
)
TABLES = ("filter", "nat", "mangle", "raw")
CGROUP_ROOT = Path("/sys/fs/cgroup")
POD_LOGS = (Path("/var/log/pods"), Path("/var/log/containers"))
# Directories kubelet 1.20 makes whatever --root-dir says (the device-plugin socket's home).
FIXED_DIRS = (Path("/var/lib/kubelet"),)


def _proc(name: str) -> Path:
    return Path("/proc/sys") / name


def sysctls() -> dict[str, str]:
    out = {}
    for name in SYSCTLS:
        with contextlib.suppress(OSError):
            out[name] = _proc(name).read_text().strip()
    return out


def write_sysctl(name: str, value: str) -> None:
    _proc(name).write_text(value + "\n")


def kube_rules(comment: str) -> list[str]:
    """iptables rules that belong to a kubelet/kube-proxy or carry our comment, per table."""
    rules = []
    for table in TABLES:
        out = subprocess.run(["iptables", "-w", "5", "-t", table, "-S"], capture_output=True,
                             text=True, check=False).stdout
        rules += [f"{table}: {line}" for line in out.splitlines()
                  if "KUBE-" in line or comment in line]
    return rules


def kube_cgroups() -> list[str]:
    return sorted(str(p) for p in CGROUP_ROOT.glob("*/kubepods*") if p.is_dir())


def our_mounts(state_dir: Path) -> list[str]:
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return [line.split()[4] for line in lines if line.split()[4].startswith(str(state_dir))]


def record(path: Path, comment: str, state_dir: Path) -> dict:
    state = {"sysctls": sysctls(), "rules": kube_rules(comment), "cgroups": kube_cgroups(),
             "mounts": our_mounts(state_dir),
             "dirs": {str(d): d.exists() for d in FIXED_DIRS},
             "logs": {str(d): sorted(p.name for p in d.iterdir()) if d.is_dir() else None
                      for d in POD_LOGS}}
    path.write_text(json.dumps(state, indent=2))
    return state


def remove_kube_chains() -> list[str]:
    """Delete the KUBE-* chains and every jump to them (kubelet leaves them on exit)."""
    done = []
    for table in TABLES:
        out = subprocess.run(["iptables", "-w", "5", "-t", table, "-S"], capture_output=True,
                             text=True, check=False).stdout
        chains = [line.split()[1] for line in out.splitlines()
                  if line.startswith("-N KUBE-")]
        for line in out.splitlines():
            if line.startswith("-A ") and not line.split()[1].startswith("KUBE-") \
                    and re.search(r"-j KUBE-", line):
                args = line.split()[1:]
                subprocess.run(["iptables", "-w", "5", "-t", table, "-D", *args],
                               capture_output=True, check=False)
                done.append(f"{table}: deleted {line}")
        for verb in ("-F", "-X"):
            for chain in chains:
                subprocess.run(["iptables", "-w", "5", "-t", table, verb, chain],
                               capture_output=True, check=False)
        done += [f"{table}: removed chain {c}" for c in chains]
    return done


def remove_cgroups() -> list[str]:
    """rmdir the kubepods hierarchies kubelet made (deepest first; only empty ones go)."""
    done = []
    for top in kube_cgroups():
        for path in sorted(Path(top).rglob("*"), key=lambda p: -len(p.parts)) + [Path(top)]:
            if path.is_dir():
                with contextlib.suppress(OSError):
                    path.rmdir()
        if not Path(top).exists():
            done.append(f"removed cgroup {top}")
    return done


def unmount_under(state_dir: Path) -> list[str]:
    done = []
    for target in sorted(our_mounts(state_dir), key=len, reverse=True):
        if subprocess.run(["umount", "-l", target], capture_output=True,
                          check=False).returncode == 0:
            done.append(f"unmounted {target}")
    return done


def remove_pod_logs(before: dict, pod_uids: set[str]) -> list[str]:
    """Pod log dirs/links that appeared since `record` and belong to one of our pods.

    ``pod_uids`` are the pods the kubelet still had; a pod deleted just before the node
    stopped (a terminating canary pod) is gone from there while its log directory, which the
    kubelet removes later, is not. Directories named ``<ns>_<pod>_<uid>`` that appeared in
    /var/log/pods while the node ran are this node's too: its kubelet is the only one here
    (`check` reports any new entry either way)."""
    done = []
    pods_dir = str(POD_LOGS[0])
    if pods_dir in before and POD_LOGS[0].is_dir():
        old = set(before[pods_dir] or [])
        pod_uids = set(pod_uids) | {e.name.rsplit("_", 1)[-1] for e in POD_LOGS[0].iterdir()
                                    if e.name not in old and e.name.count("_") >= 2}
    for name, old in before.items():
        d = Path(name)
        if not d.is_dir():
            continue
        for entry in d.iterdir():
            # /var/log/containers holds links named after pods and containers, pointing into
            # /var/log/pods/<ns>_<pod>_<uid>/: match the link's target, not its name.
            target = os.readlink(entry) if entry.is_symlink() else entry.name
            if entry.name in (old or []) or not any(uid in target for uid in pod_uids):
                continue
            if entry.is_symlink() or entry.is_file():
                entry.unlink()
            else:
                subprocess.run(["rm", "-rf", str(entry)], check=False)
            done.append(f"removed {entry}")
        if old is None and not any(d.iterdir()):
            d.rmdir()
            done.append(f"removed {d}")
    return done


def restore(before: dict) -> list[str]:
    done = []
    for name, existed in before.get("dirs", {}).items():
        if not existed and Path(name).exists():
            subprocess.run(["rm", "-rf", name], check=False)
            done.append(f"removed {name}")
    for name, value in before["sysctls"].items():
        with contextlib.suppress(OSError):
            now = _proc(name).read_text().strip()
            if now != value:
                write_sysctl(name, value)
                done.append(f"sysctl {name}: {now} -> {value}")
    return done


def check(before: dict, comment: str, state_dir: Path) -> list[str]:
    """Differences between the host now and the record; [] when it is clean."""
    now = {"sysctls": sysctls(), "rules": kube_rules(comment), "cgroups": kube_cgroups(),
           "mounts": our_mounts(state_dir)}
    diffs = []
    for key in ("sysctls",):
        for name, value in before[key].items():
            if now[key].get(name) != value:
                diffs.append(f"sysctl {name} is {now[key].get(name)}, was {value}")
    for key in ("rules", "cgroups", "mounts"):
        extra = sorted(set(now[key]) - set(before[key]))
        diffs += [f"{key}: left behind {item}" for item in extra]
    diffs += [f"dirs: left behind {name}" for name, existed in before.get("dirs", {}).items()
              if not existed and Path(name).exists()]
    for name, old in before["logs"].items():
        d = Path(name)
        if d.is_dir():
            diffs += [f"logs: left behind {d / e.name}" for e in d.iterdir()
                      if e.name not in (old or [])]
    return diffs
