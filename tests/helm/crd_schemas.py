"""Strict JSON Schemas for the custom resources the chart renders.

kubernetes-validate bundles only built-in kinds. These schemas are written from the upstream
CRD references (Gateway API v1 HTTPRoute, Prometheus Operator v1 ServiceMonitor and
PrometheusRule), limited to the fields a chart may reasonably set, with additionalProperties
false throughout, so a misspelt or misplaced field fails just as with `--strict`.
"""

from __future__ import annotations

import jsonschema

STR = {"type": "string"}
STRMAP = {"type": "object", "additionalProperties": {"type": "string"}}
DURATION = {"type": "string", "pattern": r"^(0|([0-9]+(\.[0-9]+)?(ms|s|m|h))+)$"}


def closed(props: dict, required: list[str] = ()) -> dict:
    return {"type": "object", "additionalProperties": False, "properties": props,
            "required": list(required)}


METADATA = closed({"name": STR, "namespace": STR, "labels": STRMAP, "annotations": STRMAP},
                  ["name"])
SELECTOR = closed({"matchLabels": STRMAP, "matchExpressions": {"type": "array"}})


def resource(api_versions: list[str], kind: str, spec: dict) -> dict:
    return closed({"apiVersion": {"enum": api_versions}, "kind": {"const": kind},
                   "metadata": METADATA, "spec": spec}, ["apiVersion", "kind", "metadata", "spec"])


PARENT_REF = closed({"group": STR, "kind": STR, "namespace": STR, "name": STR,
                     "sectionName": STR, "port": {"type": "integer"}}, ["name"])
BACKEND_REF = closed({"group": STR, "kind": STR, "name": STR, "namespace": STR,
                      "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                      "weight": {"type": "integer", "minimum": 0, "maximum": 1000000}},
                     ["name"])
HTTP_MATCH = closed({
    "path": closed({"type": {"enum": ["Exact", "PathPrefix", "RegularExpression"]},
                    "value": {"type": "string", "pattern": "^/"}}),
    "headers": {"type": "array"}, "queryParams": {"type": "array"},
    "method": {"enum": ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS",
                        "TRACE", "PATCH"]}})
HTTPROUTE = resource(
    ["gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1"], "HTTPRoute",
    closed({
        "parentRefs": {"type": "array", "maxItems": 32, "items": PARENT_REF},
        "hostnames": {"type": "array", "items": STR},
        "rules": {"type": "array", "minItems": 1, "maxItems": 16, "items": closed({
            "name": STR, "matches": {"type": "array", "items": HTTP_MATCH},
            "filters": {"type": "array"}, "timeouts": {"type": "object"},
            "backendRefs": {"type": "array", "items": BACKEND_REF}})}}))

ENDPOINT = closed({
    "port": STR, "targetPort": {"type": ["string", "integer"]}, "path": STR,
    "scheme": {"enum": ["http", "https"]}, "interval": DURATION, "scrapeTimeout": DURATION,
    "honorLabels": {"type": "boolean"}, "relabelings": {"type": "array"},
    "metricRelabelings": {"type": "array"}})
SERVICEMONITOR = resource(["monitoring.coreos.com/v1"], "ServiceMonitor", closed({
    "jobLabel": STR, "targetLabels": {"type": "array", "items": STR},
    "podTargetLabels": {"type": "array", "items": STR},
    "endpoints": {"type": "array", "minItems": 1, "items": ENDPOINT},
    "selector": SELECTOR,
    "namespaceSelector": closed({"any": {"type": "boolean"},
                                 "matchNames": {"type": "array", "items": STR}}),
    "sampleLimit": {"type": "integer"}}, ["endpoints", "selector"]))

RULE = {"oneOf": [
    closed({"alert": STR, "expr": STR, "for": DURATION, "keep_firing_for": DURATION,
            "labels": STRMAP, "annotations": STRMAP}, ["alert", "expr"]),
    closed({"record": {"type": "string", "pattern": "^[a-zA-Z_:][a-zA-Z0-9_:]*$"}, "expr": STR,
            "labels": STRMAP}, ["record", "expr"]),
]}
PROMETHEUSRULE = resource(["monitoring.coreos.com/v1"], "PrometheusRule", closed({
    "groups": {"type": "array", "minItems": 1, "items": closed({
        "name": STR, "interval": DURATION, "limit": {"type": "integer"},
        "rules": {"type": "array", "minItems": 1, "items": RULE}}, ["name", "rules"])}},
    ["groups"]))

SCHEMAS = {"HTTPRoute": HTTPROUTE, "ServiceMonitor": SERVICEMONITOR,
           "PrometheusRule": PROMETHEUSRULE}


def validate(doc: dict) -> None:
    """Raise jsonschema.ValidationError when the custom resource does not match."""
    jsonschema.validate(doc, SCHEMAS[doc["kind"]])
