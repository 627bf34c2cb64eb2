"""Render each dashboard's panels from a live Prometheus to one PNG per dashboard (matplotlib),
for people who would rather look than read. Not Grafana: one small plot per panel, with the
same queries (template variables set to "all")."""

from __future__ import annotations

import math
import re
import time
from pathlib import Path

import httpx
import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from grafana.dashboards import DASHBOARDS  # noqa: E402
from grafana.promql import substitute  # noqa: E402
from grafana.spec import Dashboard, Panel  # noqa: E402

_COLUMNS = 4


def _legend(fmt: str, labels: dict) -> str:
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt)
    return text.strip() or ",".join(f"{k}={v}" for k, v in labels.items()) or "value"


def _series(url: str, panel: Panel, seconds: float) -> list[tuple[str, list, list]]:
    """(legend, times relative to now in minutes, values) for every series of the panel."""
    end = time.time()
    step = max(1.0, seconds / 200)
    out = []
    for q in panel.queries:
        body = httpx.get(f"{url}/api/v1/query_range", timeout=30, params={
            "query": substitute(q.expr), "start": end - seconds, "end": end,
            "step": step}).json()
        for s in body.get("data", {}).get("result", []):
            xs = [(float(t) - end) / 60 for t, _ in s["values"]]
            ys = [float(v) for _, v in s["values"]]
            out.append((_legend(q.legend, s["metric"]), xs, ys))
    return out


def _draw(ax, panel: Panel, series) -> None:
    ax.set_title(panel.title, fontsize=7)
    ax.tick_params(labelsize=5)
    if not series:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", color="red",
                transform=ax.transAxes)
        return
    if panel.kind in ("stat", "gauge", "bargauge"):
        # Latest value of each series, as a Grafana stat panel would show it.
        ax.axis("off")
        lines = [f"{name}: {ys[-1]:.4g}" for name, _, ys in series
                 if ys and not math.isnan(ys[-1])][:6]
        ax.text(0.5, 0.5, "\n".join(lines) or "NaN", ha="center", va="center", fontsize=7,
                transform=ax.transAxes)
        ax.set_title(f"{panel.title} [{panel.unit}]", fontsize=7)
        return
    if panel.kind == "heatmap":
        def upper(item):
            return float("inf") if item[0] == "+Inf" else float(item[0])

        ordered = sorted(series, key=upper)
        xs = ordered[0][1]
        grid = [[0.0] * len(xs) for _ in ordered]
        for i, (_, _, ys) in enumerate(ordered):
            for j, y in enumerate(ys[:len(xs)]):
                grid[i][j] = 0.0 if math.isnan(y) else y
        ax.imshow(grid, aspect="auto", origin="lower", cmap="viridis",
                  extent=(xs[0], xs[-1], 0, len(ordered)))
        ax.set_yticks([i + 0.5 for i in range(len(ordered))][::3])
        ax.set_yticklabels([name for name, _, _ in ordered][::3], fontsize=4)
        ax.set_xlabel("minutes", fontsize=5)
        return
    drawstyle = "steps-post" if panel.kind == "state-timeline" else "default"
    for name, xs, ys in series[:12]:
        ax.plot(xs, ys, label=name[:40], linewidth=0.8, drawstyle=drawstyle)
    ax.set_xlabel(f"minutes  [{panel.unit}]", fontsize=5)
    ax.legend(fontsize=4, loc="upper left")


def render(url: str, dashboard: Dashboard, path: Path, seconds: float) -> Path:
    panels = dashboard.panels()
    rows = math.ceil(len(panels) / _COLUMNS)
    fig, axes = plt.subplots(rows, _COLUMNS, figsize=(11, 2.1 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        _draw(ax, panel, _series(url, panel, seconds))
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(f"{dashboard.title}  (uid {dashboard.uid})", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=72)
    plt.close(fig)
    return path


def render_all(url: str, out: Path, seconds: float) -> list[Path]:
    """One PNG per dashboard, named after its uid."""
    return [render(url, d, out / f"{d.uid}.png", seconds) for d in DASHBOARDS]
