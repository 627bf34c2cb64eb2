"""Cluster DNS for the real node: Service names -> ClusterIPs, nothing else.

No CoreDNS image can be pulled here, so Debian's dnsmasq answers on the pod bridge's gateway
address (kubelet's --cluster-dns) from a hosts directory, and this loop keeps one file there in
step with the Services (dnsmasq re-reads --hostsdir on change). dnsmasq runs with --no-resolv
and answers cluster.local itself: a lookup never leaves the host.

    python cluster/dns.py --kubeconfig K --hosts-dir D
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import typer

DOMAIN = "cluster.local"
app = typer.Typer(add_completion=False, help=__doc__)


def dnsmasq_cmd(address: str, hosts_dir: Path, pid_file: Path) -> list[str]:
    binary = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"  # sbin is not on every PATH
    return [binary, "--keep-in-foreground", "--no-resolv", "--no-hosts", "--no-poll",
            f"--listen-address={address}", "--bind-interfaces", "--except-interface=lo",
            f"--hostsdir={hosts_dir}", f"--local=/{DOMAIN}/", "--domain-needed",
            "--bogus-priv", "--cache-size=0", f"--pid-file={pid_file}", "--user=root",
            "--log-facility=-"]


def hosts_lines(services) -> list[str]:
    lines = []
    for svc in services:
        ip = svc.spec.cluster_ip
        if ip and ip != "None":
            name = f"{svc.metadata.name}.{svc.metadata.namespace}.svc.{DOMAIN}"
            lines.append(f"{ip} {name}")
    return sorted(lines)


@app.command("sync")
def sync(kubeconfig: Path = typer.Option(...), hosts_dir: Path = typer.Option(...),
         period: float = typer.Option(0.5, help="seconds between two reads of the Services")
         ) -> None:
    """Write the Services' names and ClusterIPs into HOSTS_DIR/services until stopped."""
    from kubernetes import client, config

    config.load_kube_config(config_file=str(kubeconfig))
    api = client.CoreV1Api()
    target = hosts_dir / "services"
    last = None
    while True:
        try:
            text = "\n".join(hosts_lines(api.list_service_for_all_namespaces().items)) + "\n"
            if text != last:
                tmp = hosts_dir / ".services.tmp"
                tmp.write_text(text)
                tmp.rename(target)  # atomic: dnsmasq never reads half a file
                last = text
        except Exception as exc:  # noqa: BLE001 - the API may restart; keep serving old data
            print(f"dns sync: {exc}", flush=True)
        time.sleep(period)


if __name__ == "__main__":
    app()
