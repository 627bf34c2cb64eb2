"""Plain descriptions of dashboards, panels and queries, independent of any Grafana library.

The dashboards are written as these specs so that one structure feeds three consumers: the
Grafana JSON builder (`build.py`), the live-Prometheus tests that evaluate every query, and
the matplotlib previews.
"""

from __future__ import annotations

from dataclasses import dataclass

# Series labels every query filters on. In Kubernetes they come from relabelling pod metadata
# (namespace, app.kubernetes.io/instance = the Helm release); the test Prometheus sets the same
# labels on its static targets.
RELEASE_LABEL = "app_kubernetes_io_instance"
SEL = f'namespace=~"$namespace", {RELEASE_LABEL}=~"$release"'
# The labels recording rules keep, so the dashboards can still filter on the variables.
KEEP = f"namespace, {RELEASE_LABEL}"


@dataclass(frozen=True)
class Query:
    """One PromQL query of a panel; `legend` is a Grafana legend format ({{label}})."""

    expr: str
    legend: str = ""
    instant: bool = False


@dataclass(frozen=True)
class Panel:
    """One panel: `kind` is a Grafana panel type (timeseries, stat, gauge, heatmap, ...)."""

    title: str
    kind: str
    queries: tuple[Query, ...]
    unit: str = "short"
    description: str = ""
    width: int = 12
    height: int = 8
    thresholds: tuple[tuple[float, str], ...] = ()
    min: float | None = None
    max: float | None = None
    # Value-to-text mappings for stat/state panels (e.g. 0 -> "no drift").
    mappings: tuple[tuple[str, str, str], ...] = ()
    stacked: bool = False


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    rows: tuple[Row, ...]
    tags: tuple[str, ...] = ("taxi-serve",)
    # The metric whose label values populate the namespace/release variables.
    variable_metric: str = "taxi_requests_total"

    @property
    def filename(self) -> str:
        return f"{self.uid}.json"

    def panels(self) -> list[Panel]:
        return [p for row in self.rows for p in row.panels]

    def queries(self) -> list[Query]:
        return [q for p in self.panels() for q in p.queries]
