"""The generated dashboards: committed copies are current, and each is a Grafana 10+ model
with stable UIDs, the datasource/namespace/release variables and standard panel types."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from common.paths import ROOT
from grafana import build
from grafana.dashboards import DASHBOARDS
from grafana.promql import metric_names, substitute

pytestmark = pytest.mark.unit

# Panel types built into Grafana 10 (no plugin needed).
CORE_PANEL_TYPES = {"row", "timeseries", "stat", "gauge", "bargauge", "table", "heatmap",
                    "state-timeline", "status-history", "barchart", "histogram", "text"}
# UIDs are links people bookmark and alerts point at: changing one is a deliberate act.
STABLE_UIDS = {"taxi-serve-serving", "taxi-serve-drift-accuracy", "taxi-serve-rollouts"}


def models() -> list[dict]:
    return [json.loads(p.read_text()) for p in
            sorted((ROOT / "helm/taxi-serve/files/dashboards").glob("*.json"))]


def test_committed_files_match_the_code():
    assert build.stale() == [], "run `make dashboards` and commit the result"


def test_stale_check_notices_an_edited_copy(tmp_path, monkeypatch):
    copy = tmp_path / "k8s"
    copy.mkdir()
    monkeypatch.setattr(build, "DASHBOARD_DIRS", (copy,))
    monkeypatch.setattr(build, "RULE_FILES", ())
    assert len(build.stale()) == len(DASHBOARDS)  # missing
    build.write()
    assert build.stale() == []
    victim = copy / DASHBOARDS[0].filename
    victim.write_text(victim.read_text().replace("p99", "p98", 1))
    (copy / "hand-made.json").write_text("{}")
    assert sorted(build.stale()) == sorted([str(victim),
                                            f"{copy / 'hand-made.json'} (not generated)"])


def test_chart_and_dev_stack_copies_are_byte_identical():
    chart, dev = build.DASHBOARD_DIRS
    assert sorted(p.name for p in chart.glob("*.json")) == sorted(d.filename for d in DASHBOARDS)
    for d in DASHBOARDS:
        assert (chart / d.filename).read_bytes() == (dev / d.filename).read_bytes()
    assert build.RULE_FILES[0].read_bytes() == build.RULE_FILES[1].read_bytes()


def test_dev_stack_kustomization_provisions_every_dashboard():
    kustomization = yaml.safe_load((ROOT / "k8s/kustomization.yaml").read_text())
    generator = next(g for g in kustomization["configMapGenerator"]
                     if g["name"] == "grafana-dashboards")
    assert sorted(generator["files"]) == sorted(f"grafana/dashboards/{d.filename}"
                                                for d in DASHBOARDS)


def test_uids_are_stable_and_unique():
    uids = [m["uid"] for m in models()]
    assert sorted(uids) == sorted(STABLE_UIDS)
    assert all(len(u) <= 40 and re.fullmatch(r"[a-z0-9-]+", u) for u in uids)


def test_models_are_grafana_10_dashboards():
    for m in models():
        assert m["schemaVersion"] >= 36 and m["title"] and m["time"]["from"] == "now-1h"
        assert "rows" not in m  # pre-Grafana-5 layout
        ids = [p["id"] for p in m["panels"]]
        assert len(ids) == len(set(ids))
        for p in m["panels"]:
            assert p["type"] in CORE_PANEL_TYPES, p["type"]
            pos = p["gridPos"]
            assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24 and pos["h"] > 0
            if p["type"] == "row":
                continue
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert p["targets"] and len({t["refId"] for t in p["targets"]}) == len(p["targets"])
            for t in p["targets"]:
                assert t["datasource"] == p["datasource"] and t["expr"]


def test_panels_do_not_overlap():
    for m in models():
        cells = set()
        for p in m["panels"]:
            g = p["gridPos"]
            mine = {(x, y) for x in range(g["x"], g["x"] + g["w"])
                    for y in range(g["y"], g["y"] + g["h"])}
            assert not cells & mine, p["title"]
            cells |= mine


def test_template_variables_datasource_namespace_release():
    for m in models():
        variables = {v["name"]: v for v in m["templating"]["list"]}
        assert list(variables) == ["datasource", "namespace", "release"]
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        for name in ("namespace", "release"):
            assert variables[name]["type"] == "query"
            assert variables[name]["query"].startswith("label_values(")
            assert variables[name]["includeAll"] and variables[name]["allValue"] == ".*"
            assert variables[name]["current"]["value"] == ["$__all"]


def test_every_query_filters_on_namespace_and_release():
    """A query without the filters would mix releases when several share a Prometheus."""
    for d in DASHBOARDS:
        for q in d.queries():
            for name in metric_names(q.expr):
                # each selector of a series carries both filters
                for selector in re.findall(re.escape(name) + r"\{([^}]*)\}", q.expr):
                    assert '$namespace' in selector and '$release' in selector, q.expr
                assert re.search(re.escape(name) + r"\{", q.expr), q.expr


def test_queries_only_use_known_template_variables():
    for d in DASHBOARDS:
        for q in d.queries():
            assert "$" not in substitute(q.expr)
