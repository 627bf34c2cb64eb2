"""Turn the dashboard specs into Grafana JSON (via grafanalib) and the rule file into YAML,
and write or check the provisioned copies in the chart and the k8s/ dev stack."""

from __future__ import annotations

import json
from pathlib import Path

import grafanalib.core as g
from grafanalib._gen import DashboardEncoder

from common.paths import ROOT
from grafana import rules
from grafana.spec import RELEASE_LABEL, Dashboard, Panel

# Grafana 10.0 writes schemaVersion 38 and 11.x 39; 39 imports into 10.x and later unchanged.
SCHEMA_VERSION = 39
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
DASHBOARD_DIRS = (ROOT / "helm/taxi-serve/files/dashboards", ROOT / "k8s/grafana/dashboards")
RULE_FILES = (ROOT / "helm/taxi-serve/files/prometheus-rules.yaml",
              ROOT / "k8s/prometheus/taxi-serve-rules.yaml")
_GRID_WIDTH = 24

_PANEL_CLASSES = {"timeseries": g.TimeSeries, "stat": g.Stat, "gauge": g.GaugePanel,
                  "bargauge": g.BarGauge, "heatmap": g.Heatmap,
                  "state-timeline": g.StateTimeline}


def _field_defaults(p: Panel) -> dict:
    steps = [{"color": "green", "value": None}]
    steps += [{"color": color, "value": value} for value, color in p.thresholds]
    defaults = {"unit": p.unit, "thresholds": {"mode": "absolute", "steps": steps}}
    if p.min is not None:
        defaults["min"] = p.min
    if p.max is not None:
        defaults["max"] = p.max
    if p.mappings:
        defaults["mappings"] = [{"type": "value", "options": {
            value: {"text": text, "color": color, "index": i}}}
            for i, (value, text, color) in enumerate(p.mappings)]
    if p.kind == "timeseries":
        custom = {"thresholdsStyle": {"mode": "line" if p.thresholds else "off"}}
        if p.stacked:
            custom["stacking"] = {"mode": "normal", "group": "A"}
        defaults["custom"] = custom
    return defaults


def _panel(p: Panel, panel_id: int, x: int, y: int):
    targets = [g.Target(expr=q.expr, legendFormat=q.legend, refId=chr(ord("A") + i),
                        instant=q.instant, datasource=DATASOURCE,
                        format="heatmap" if p.kind == "heatmap" else "time_series")
               for i, q in enumerate(p.queries)]
    extra = {"fieldConfig": {"defaults": _field_defaults(p)}}
    if p.kind == "heatmap":
        extra.update({"dataFormat": "tsbuckets", "options": {"calculate": False,
                                                             "yAxis": {"unit": p.unit}}})
    if p.kind == "stat":
        extra["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "",
                                              "values": False},
                            "colorMode": "value", "graphMode": "area", "textMode": "auto"}
    cls = _PANEL_CLASSES[p.kind]
    return cls(title=p.title, description=p.description, dataSource=DATASOURCE,
               targets=targets, id=panel_id,
               gridPos=g.GridPos(h=p.height, w=p.width, x=x, y=y), extraJson=extra)


def _templating(d: Dashboard) -> g.Templating:
    ds = {"type": "prometheus", "uid": "${datasource}"}
    common = dict(dataSource=ds, includeAll=True, multi=True, allValue=".*", default="All",
                  refresh=g.REFRESH_ON_TIME_RANGE_CHANGE)
    return g.Templating(list=[
        g.Template(name="datasource", label="Data source", query="prometheus",
                   type="datasource", default="prometheus"),
        g.Template(name="namespace", label="Namespace",
                   query=f"label_values({d.variable_metric}, namespace)", **common),
        g.Template(name="release", label="Release",
                   query=f'label_values({d.variable_metric}{{namespace=~"$namespace"}}, '
                         f"{RELEASE_LABEL})", **common),
    ])


def dashboard_json(d: Dashboard) -> dict:
    """The Grafana dashboard model of one spec, laid out row by row on the 24-column grid."""
    panels, next_id, y = [], 1, 0
    for row in d.rows:
        panels.append(g.RowPanel(title=row.title, id=next_id,
                                 gridPos=g.GridPos(h=1, w=_GRID_WIDTH, x=0, y=y)))
        next_id, y, x, row_h = next_id + 1, y + 1, 0, 0
        for p in row.panels:
            if x + p.width > _GRID_WIDTH:
                x, y, row_h = 0, y + row_h, 0
            panels.append(_panel(p, next_id, x, y))
            next_id, x, row_h = next_id + 1, x + p.width, max(row_h, p.height)
        y += row_h
    model = g.Dashboard(
        title=d.title, uid=d.uid, description=d.description, tags=list(d.tags),
        panels=panels, templating=_templating(d), schemaVersion=SCHEMA_VERSION,
        timezone="utc", refresh="30s", graphTooltip=1,
        time=g.Time("now-1h", "now"))
    data = json.loads(json.dumps(model.to_json_data(), cls=DashboardEncoder))
    # grafanalib still emits pre-Grafana-5 keys; drop them so the model is a clean v39 one.
    for key in ("rows", "hideControls", "sharedCrosshair", "style", "gnetId"):
        data.pop(key, None)
    for variable in data["templating"]["list"]:
        if variable["includeAll"]:
            # Grafana's own encoding of a selected "All" option.
            variable["current"] = {"selected": True, "text": ["All"], "value": ["$__all"]}
    return data


def render_dashboard(d: Dashboard) -> str:
    return json.dumps(dashboard_json(d), indent=2, sort_keys=True) + "\n"


def outputs() -> dict[Path, str]:
    """Every generated file with the text it must contain."""
    from grafana.dashboards import DASHBOARDS

    files: dict[Path, str] = {}
    for d in DASHBOARDS:
        text = render_dashboard(d)
        for directory in DASHBOARD_DIRS:
            files[directory / d.filename] = text
    text = rules.render()
    for path in RULE_FILES:
        files[path] = text
    return files


def _show(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def stale() -> list[str]:
    """Generated files that are missing or differ, and leftover dashboards nobody generates."""
    want = outputs()
    problems = [_show(p) for p, text in want.items() if not p.exists() or p.read_text() != text]
    for directory in DASHBOARD_DIRS:
        problems += [f"{_show(p)} (not generated)" for p in directory.glob("*.json")
                     if p not in want]
    return problems


def write() -> list[Path]:
    """Write every generated file and remove dashboards the code no longer defines."""
    want = outputs()
    for directory in DASHBOARD_DIRS:
        for p in directory.glob("*.json"):
            if p not in want:
                p.unlink()
    for path, text in want.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return list(want)
