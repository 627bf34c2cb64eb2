"""Small PromQL helpers: template-variable substitution and metric-name extraction.

Prometheus 2.42 has no parse API, so metric names are found by a tokenizer that drops string
literals, label matchers, grouping clauses and function names; what remains of the identifiers
are metric (or recorded-series) names. Good enough for the queries written in this package,
and the tests compare its answer with what a live Prometheus actually returns.
"""

from __future__ import annotations

import re

# Values the live tests use for Grafana's variables: everything matches, and the rate window
# covers a few 1 s scrapes.
TEST_VARIABLES = {"namespace": ".*", "release": ".*", "__rate_interval": "1m",
                  "__interval": "15s", "datasource": "prometheus"}

_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and",
    "or", "unless", "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk",
    "quantile", "count_values", "group", "inf", "nan", "atan2",
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_BRACES = re.compile(r"\{[^}]*\}")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_RANGE = re.compile(r"\[[^\]]*\]")
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def substitute(expr: str, values: dict[str, str] | None = None) -> str:
    """Replace $var, ${var} and $__rate_interval the way Grafana would, with `values`."""
    values = TEST_VARIABLES if values is None else values

    def repl(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"no value for template variable ${name} in {expr!r}")
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", repl, expr)


def metric_names(expr: str) -> set[str]:
    """Names of the series an expression selects (metrics or recorded series)."""
    text = _STRING.sub('""', expr)
    text = _BRACES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _RANGE.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        name, rest = match.group(0), text[match.end():].lstrip()
        if name.lower() in _KEYWORDS or rest.startswith("("):
            continue  # an operator/aggregation keyword or a function call
        if text[max(0, match.start() - 1)].isdigit():
            continue  # the unit of a duration/number such as 5m or 1e3
        names.add(name)
    return names
