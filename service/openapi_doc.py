"""The OpenAPI document of the HTTP routes, built from the same pydantic models that validate
them (the routes are plain ASGI, service/http_app.py; FastAPI only serves this document)."""

from __future__ import annotations

from fastapi import FastAPI

from service.feedback import FeedbackReply, FeedbackRequest
from service.schemas import BatchRequest, BatchResponse, ErrorResponse, Prediction, TripRequest

ERRORS = {400: "malformed JSON, or a body that is not UTF-8 (byte-order marks included)",
          413: "body (or batch) larger than the limit",
          415: "content-type is not application/json",
          422: "a field breaks a rule",
          503: "feedback store unreachable: nothing stored, retry"}


def _responses(ok_code: int, ok: str, codes: tuple[int, ...]) -> dict:
    out = {str(ok_code): {"description": "answered", "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{ok}"}}}}}
    for code in codes:
        out[str(code)] = {"description": ERRORS[code], "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
    return out


def _body(model: str) -> dict:
    return {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{model}"}}}}


def paths(max_batch: int, feedback: bool) -> dict:
    out = {
        "/predict": {"post": {"summary": "Predict", "operationId": "predict",
                              "description": "Duration and fare of one trip.",
                              "requestBody": _body("TripRequest"),
                              "responses": _responses(200, "Prediction", (400, 413, 415, 422))}},
        "/predict_batch": {"post": {
            "summary": "Predict Batch", "operationId": "predict_batch",
            "description": f"Up to {max_batch} trips, answered in order.",
            "requestBody": _body("BatchRequest"),
            "responses": _responses(200, "BatchResponse", (400, 413, 415, 422))}},
    }
    if feedback:
        out["/feedback"] = {"post": {
            "summary": "Feedback", "operationId": "feedback",
            "description": "What really happened on a predicted trip. 202 once it is stored; "
                           "repeats of a request id are answered `duplicate` and never counted "
                           "twice.",
            "requestBody": _body("FeedbackRequest"),
            "responses": _responses(202, "FeedbackReply", (400, 413, 415, 422, 503))}}
    return out


def document_app(max_batch: int, feedback: bool) -> FastAPI:
    """A FastAPI app whose only route is ``GET /openapi.json``."""
    app = FastAPI(title="taxi-serve", version="1", docs_url=None, redoc_url=None,
                  description="NYC taxi trip duration and fare predictions (docs/api.md)")
    original = app.openapi

    def openapi():
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        models = [TripRequest, Prediction, BatchResponse, ErrorResponse]
        if feedback:
            models += [FeedbackRequest, FeedbackReply]
        for model in models:
            found = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in found.pop("$defs", {}).items():
                schemas.setdefault(name, sub)
            schemas[model.__name__] = found
        batch_schema = BatchRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        batch_schema.pop("$defs", None)
        batch_schema["properties"]["trips"]["maxItems"] = max_batch
        schemas["BatchRequest"] = batch_schema
        schema["paths"] = {**paths(max_batch, feedback), **schema.get("paths", {})}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi
    return app
