"""HTTP routes of the contract, mounted into the BentoML service.

Not ``@bentoml.api``, because the public contract needs what BentoML 1.4's API layer does not
give: 422 naming the field and rule (BentoML answers 400), 400 for malformed JSON, 413 for an
oversized batch. ``POST /predict`` and ``/predict_batch`` are a plain ASGI app
(``PredictRoutes``): the body is parsed and validated in one pass by pydantic-core and the
answer is written as one JSON document, which took ~0.2 ms less per request than the same
routes through FastAPI's routing, dependency and response layers (a tenth of the latency
budget). Everything else (``/feedback``, ``/openapi.json``) is FastAPI; the OpenAPI document
describes the fast routes too, from the same pydantic models. BentoML still owns the server,
the workers, /healthz, /readyz and /metrics.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

import pydantic_core
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from redis.exceptions import RedisError

from service.feedback import FeedbackReply, FeedbackRequest, FeedbackStore
from service.predictor import Predictor
from service.schemas import BatchRequest, BatchResponse, ErrorResponse, Prediction, TripRequest

log = logging.getLogger("taxi.http")
ERRORS = {400: {"model": ErrorResponse, "description": "malformed JSON"},
          413: {"model": ErrorResponse, "description": "batch larger than the limit"},
          422: {"model": ErrorResponse, "description": "a field breaks a rule"}}


def error_details(errors: list[dict]) -> list[dict]:
    """Pydantic errors as {field, rule}: ``trips.3.pickup_zone_id`` / the broken rule."""
    out = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        rule = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            rule = "unknown field: not part of the contract"
        out.append({"field": ".".join(loc) or "body", "rule": rule})
    return out


def describe(details: list[dict]) -> str:
    return "; ".join(f"{d['field']}: {d['rule']}" for d in details)


class Timing:
    """Pure ASGI middleware: request latency and counts by endpoint and status class (paths
    that are not routes share the endpoint label ``other``, so labels stay bounded)."""

    ROUTES = frozenset({"/feedback", "/openapi.json"})

    def __init__(self, app, get_predictor: Callable[[], Predictor]):
        self.app, self.get_predictor = app, get_predictor

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), {"code": 500}

        async def capture(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            path = scope["path"] if scope["path"] in self.ROUTES else "other"
            self.get_predictor().requests.observe(
                "http", path, f"{status['code'] // 100}xx", time.perf_counter() - start)


FEEDBACK_ERRORS = {**{k: v for k, v in ERRORS.items() if k != 413},
                   503: {"model": ErrorResponse, "description": "feedback store unreachable: "
                                                            "nothing stored, retry"}}


def error_body(details: list[dict]) -> dict:
    return {"error": describe(details), "detail": details}


MALFORMED = {"error": "malformed JSON body",
             "detail": [{"field": "body", "rule": "must be a valid JSON document"}]}


class PredictRoutes:
    """``POST /predict`` and ``POST /predict_batch`` as plain ASGI, in front of ``app``
    (which answers every other path)."""

    PATHS = ("/predict", "/predict_batch")

    def __init__(self, app, get_predictor: Callable[[], Predictor], max_batch: int):
        self.app, self.get_predictor, self.max_batch = app, get_predictor, max_batch
        # a trip is ~150 bytes of JSON; anything far beyond the batch limit is refused unread
        self.max_body = 64 * 1024 + 2048 * max_batch

    async def __call__(self, scope, receive, send):
        path = scope.get("path")
        if scope["type"] != "http" or path not in self.PATHS:
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        headers = [(b"content-type", b"application/json")]
        try:
            if scope["method"] != "POST":
                status, body = 405, {"error": "method not allowed: use POST", "detail": []}
                headers.append((b"allow", b"POST"))
            else:
                raw = await _read_body(receive, self.max_body)
                if raw is None:
                    rule = f"request body larger than {self.max_body} bytes"
                    status, body = 413, error_body([{"field": "body", "rule": rule}])
                elif path == "/predict":
                    status, body = await self.predict(raw)
                else:
                    status, body = await self.predict_batch(raw)
        except Exception:  # never a bare 500 without a body, and always counted
            log.exception("%s failed", path)
            status, body = 500, {"error": "internal error", "detail": []}
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        self.get_predictor().requests.observe("http", path, f"{status // 100}xx",
                                              time.perf_counter() - start)

    async def predict(self, raw: bytes) -> tuple[int, bytes | dict]:
        try:
            trip = TripRequest.model_validate_json(raw)
        except ValidationError as exc:
            errors = exc.errors()
            if any(e["type"] == "json_invalid" for e in errors):
                return 400, MALFORMED
            return 422, error_body(error_details(errors))
        answers = await self.get_predictor().answer([trip])
        return 200, pydantic_core.to_json(answers.rows()[0])

    async def predict_batch(self, raw: bytes) -> tuple[int, bytes | dict]:
        try:
            body = pydantic_core.from_json(raw)
        except ValueError:
            return 400, MALFORMED
        trips = body.get("trips") if isinstance(body, dict) else None
        if isinstance(trips, list) and len(trips) > self.max_batch:
            rule = f"at most {self.max_batch} trips per batch (got {len(trips)})"
            return 413, error_body([{"field": "trips", "rule": rule}])
        try:
            batch = BatchRequest.model_validate(body)
        except ValidationError as exc:
            return 422, error_body(error_details(exc.errors()))
        answers = await self.get_predictor().answer(batch.trips)
        return 200, pydantic_core.to_json({"predictions": answers.rows()})


async def _read_body(receive, limit: int) -> bytes | None:
    """The whole request body, or None once it grows past ``limit`` bytes."""
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def _fast_route_docs(max_batch: int) -> dict:
    """OpenAPI paths of the ``PredictRoutes`` routes, from the same pydantic models."""
    def responses(ok: str, codes: tuple[int, ...]) -> dict:
        out = {"200": {"description": "answered", "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{ok}"}}}}}
        for code in codes:
            out[str(code)] = {"description": ERRORS[code]["description"],
                              "content": {"application/json": {"schema": {
                                  "$ref": "#/components/schemas/ErrorResponse"}}}}
        return out

    def body(model: str) -> dict:
        return {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{model}"}}}}

    return {
        "/predict": {"post": {"summary": "Predict", "operationId": "predict",
                              "description": "Duration and fare of one trip.",
                              "requestBody": body("TripRequest"),
                              "responses": responses("Prediction", (400, 422))}},
        "/predict_batch": {"post": {
            "summary": "Predict Batch", "operationId": "predict_batch",
            "description": f"Up to {max_batch} trips, answered in order.",
            "requestBody": body("BatchRequest"),
            "responses": responses("BatchResponse", (400, 413, 422))}},
    }


def create_app(get_predictor: Callable[[], Predictor], max_batch: int = 1000,
               get_feedback: Callable[[], FeedbackStore] | None = None):
    """The HTTP app; ``get_predictor`` returns the service's loaded predictor and
    ``get_feedback`` its feedback store (no /feedback route without one)."""
    app = FastAPI(title="taxi-serve", version="1", docs_url=None, redoc_url=None,
                  description="NYC taxi trip duration and fare predictions")
    app.add_middleware(Timing, get_predictor=get_predictor)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse(MALFORMED, status_code=400)
        return JSONResponse(error_body(error_details(errors)), status_code=422)

    if get_feedback is not None:
        @app.post("/feedback", status_code=202, response_model=FeedbackReply,
                  responses=FEEDBACK_ERRORS)
        async def feedback(fb: FeedbackRequest) -> FeedbackReply:
            """What really happened on a predicted trip. 202 once it is stored; repeats of a
            request id are answered ``duplicate`` and never counted twice."""
            try:
                reply = await get_feedback().accept(fb)
            except (RedisError, OSError, TimeoutError):
                return JSONResponse({"error": "feedback store unreachable: nothing was stored, "
                                              "retry later", "detail": []}, status_code=503)
            return Response(reply.model_dump_json(), status_code=202,
                            media_type="application/json")

    original = app.openapi

    def openapi():  # the fast routes are not FastAPI routes: publish them from their models
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (TripRequest, Prediction, BatchResponse, ErrorResponse):
            found = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in found.pop("$defs", {}).items():
                schemas.setdefault(name, sub)
            schemas[model.__name__] = found
        batch_schema = BatchRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        batch_schema.pop("$defs", None)
        batch_schema["properties"]["trips"]["maxItems"] = max_batch
        schemas["BatchRequest"] = batch_schema
        schema["paths"] = {**_fast_route_docs(max_batch), **schema.get("paths", {})}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi
    return PredictRoutes(app, get_predictor, max_batch)
