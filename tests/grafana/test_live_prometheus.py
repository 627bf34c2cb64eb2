"""Every panel query and every recording rule, evaluated by a real Prometheus that scrapes a
real stable and canary service and the drift monitor under load, returns data.

The retrain job is not run here: the test writes its Redis keys (taxi:retrain:last,
taxi:retrain:outcomes, taxi:rollout:state) in the contract format (docs/monitoring.md) and
the drift monitor exports them, as it does in a cluster.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import pytest

from grafana.dashboards import DASHBOARDS
from grafana.promql import metric_names, substitute
from grafana.rules import ALERTS, RECORDINGS
from tests.grafana.livestack import NAMESPACE, RELEASE

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PANEL_QUERIES = [(d.uid, p.title, i, q) for d in DASHBOARDS for p in d.panels()
                 for i, q in enumerate(p.queries)]
SETTLE_SECONDS = 120


def _finite(result: list[dict]) -> list[dict]:
    return [s for s in result if not math.isnan(float(s["value"][1]))]


@pytest.fixture(scope="session")
def settled(live):
    """Wait (bounded) until every panel query and recorded series has a finite value, so the
    per-query tests below each read Prometheus once. Queries still empty at the deadline
    are left for those tests to report."""
    pending = {substitute(q.expr) for *_, q in PANEL_QUERIES} | {r.record for r in RECORDINGS}
    deadline = time.monotonic() + SETTLE_SECONDS
    while pending and time.monotonic() < deadline:
        pending = {e for e in pending if not _finite(live.query(e))}
        if pending:
            time.sleep(2)
    return live


def _explain(live) -> str:
    return f" (drift monitor: {live.drift_error})" if live.drift_error else ""


def test_every_target_is_scraped(settled):
    health = settled.targets_up()
    assert len(health) == len(settled.targets)
    assert set(health.values()) == {"up"}, health


@pytest.mark.parametrize("uid,title,index,query", PANEL_QUERIES,
                         ids=[f"{u}:{t}:{i}" for u, t, i, _ in PANEL_QUERIES])
def test_panel_query_returns_data(settled, uid, title, index, query):
    result = _finite(settled.query(substitute(query.expr)))
    assert result, f"{uid} / {title}: no data for {query.expr}{_explain(settled)}"


@pytest.mark.parametrize("rule", RECORDINGS, ids=[r.record for r in RECORDINGS])
def test_recording_rule_returns_data(settled, rule):
    result = _finite(settled.query(rule.record))
    assert result, f"{rule.record}: no data for {rule.expr}{_explain(settled)}"
    # Recorded series keep the labels the dashboards filter on.
    assert all(s["metric"].get("namespace") == NAMESPACE and
               s["metric"].get("app_kubernetes_io_instance") == RELEASE for s in result)


def test_rules_load_and_evaluate_without_errors(settled):
    groups = settled.rules()
    rules = {r.get("name"): r for g in groups for r in g["rules"]}
    assert set(rules) == {r.record for r in RECORDINGS} | {a.alert for a in ALERTS}
    assert {n: r["health"] for n, r in rules.items() if r["health"] != "ok"} == {}


def test_every_referenced_metric_is_exported(settled):
    """No panel, recording rule or alert names a series the running system does not have:
    the reference set is what this Prometheus scraped and recorded, not a hand-kept list."""
    exported = settled.metric_names()
    exprs = ([q.expr for *_, q in PANEL_QUERIES] + [r.expr for r in RECORDINGS] +
             [a.expr for a in ALERTS])
    referenced = set().union(*(metric_names(e) for e in exprs))
    assert referenced - exported == set(), _explain(settled)


def test_template_variables_find_the_namespace_and_release(settled):
    for d in DASHBOARDS:
        assert _finite(settled.query(f'count({d.variable_metric}{{namespace="{NAMESPACE}", '
                                     f'app_kubernetes_io_instance="{RELEASE}"}})'))


def test_previews_render_every_dashboard(settled, tmp_path):
    """`make dashboards-preview` runs this with TAXI_PREVIEW_DIR=grafana/previews."""
    from grafana.preview import render_all

    out = Path(os.environ.get("TAXI_PREVIEW_DIR", tmp_path))
    paths = render_all(settled.url, out, seconds=float(os.environ.get("TAXI_PREVIEW_SECONDS",
                                                                      "180")))
    assert sorted(p.name for p in paths) == sorted(f"{d.uid}.png" for d in DASHBOARDS)
    assert all(p.stat().st_size > 10_000 for p in paths)
    assert settled.load.error is None and settled.load.sent["http"] > 0
