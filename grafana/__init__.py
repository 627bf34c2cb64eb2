"""Grafana dashboards and Prometheus rules for taxi-serve, generated from Python code.

`python -m grafana generate` writes the dashboards and the rule file into the chart
(`helm/taxi-serve/files/`) and the dev stack (`k8s/`); `python -m grafana check` fails when
the committed files differ from what the code generates.
"""
