"""The retrain pods' egress when they train on a Dask cluster (retrain.daskAddress): a
NetworkPolicy lets them reach the scheduler's port in the configured peers, and only when the
address is set."""

from __future__ import annotations

import pytest
from chartlib import by_kind, one, render, render_fails

pytestmark = pytest.mark.helm

DASK = "retrain.daskAddress=tcp://taxi-dask-scheduler.dask.svc:8786"
NAME = "taxi-serve-retrain"


def _retrain_policies(docs):
    return [d for d in by_kind(docs, "NetworkPolicy") if d["metadata"]["name"] == NAME]


def _rule_with_port(policy, port):
    rules = [r for r in policy["spec"]["egress"]
             if any(p["port"] == port for p in r.get("ports", []))]
    assert len(rules) == 1, f"expected one egress rule with port {port}: {rules}"
    return rules[0]


def test_no_retrain_policy_without_a_dask_address():
    assert _retrain_policies(render()) == []
    assert _retrain_policies(render(sets=(DASK, "networkPolicy.enabled=false"))) == []
    assert _retrain_policies(render(sets=(DASK, "retrain.enabled=false"))) == []


def test_the_scheduler_port_is_allowed_to_the_configured_cidr():
    docs = render(sets=(DASK, "networkPolicy.dask.to[0].ipBlock.cidr=10.20.0.0/16",
                        "networkPolicy.dask.extraPorts={8787}"))
    policy = one(docs, "NetworkPolicy", NAME)
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Egress"]
    assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "retrain"
    dask = _rule_with_port(policy, 8786)
    assert {p["port"] for p in dask["ports"]} == {8786, 8787}
    assert dask["to"] == [{"ipBlock": {"cidr": "10.20.0.0/16"}}]
    # what the job needs besides the scheduler stays reachable: DNS, Redis, the serving pods,
    # the API server and Prometheus (the default retrainEgress)
    for port in (53, 6379, 443, 6443, 9090):
        _rule_with_port(policy, port)
    serving = _rule_with_port(policy, "http")
    assert serving["to"][0]["podSelector"]["matchLabels"][
        "app.kubernetes.io/component"] == "server"


def test_the_port_comes_from_the_address_and_peers_default_to_any():
    policy = one(render(sets=("retrain.daskAddress=tls://10.1.2.3:9786",)),
                 "NetworkPolicy", NAME)
    assert "to" not in _rule_with_port(policy, 9786)


def test_the_retrain_pods_carry_the_labels_the_policy_selects():
    docs = render(sets=(DASK,))
    selector = one(docs, "NetworkPolicy", NAME)["spec"]["podSelector"]["matchLabels"]
    cron = one(docs, "CronJob", NAME)
    labels = cron["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()


@pytest.mark.parametrize("bad, field", [
    ("networkPolicy.dask.extraPorts={70000}", "networkPolicy.dask.extraPorts"),
    ("networkPolicy.dask.to[0].ipBlock.bogus=1", "networkPolicy.dask.to"),
    ("networkPolicy.retrainEgress[0].ports[0].protocol=ICMP", "networkPolicy.retrainEgress"),
])
def test_bad_dask_egress_values_are_rejected_by_the_schema(bad, field):
    assert field in render_fails(sets=(DASK, bad))
