"""HTTP routes of the contract (/predict, /predict_batch), mounted into the BentoML service.

FastAPI rather than ``@bentoml.api`` for these routes, because the public contract needs what
BentoML 1.4's API layer does not give: 422 naming the field and rule (BentoML answers 400),
400 for malformed JSON, 413 for an oversized batch, and no per-request serde overhead.
BentoML still owns the server, workers, /healthz, /readyz and /metrics.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from redis.exceptions import RedisError

from service import metrics
from service.feedback import FeedbackReply, FeedbackRequest, FeedbackStore
from service.predictor import Predictor
from service.schemas import BatchRequest, BatchResponse, ErrorResponse, Prediction, TripRequest

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
    """Pure ASGI middleware: request latency and counts by endpoint and status class."""

    def __init__(self, app, labels: Callable[[], dict]):
        self.app, self.labels = app, labels

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
            labels = dict(protocol="http", endpoint=scope["path"],
                          status=f"{status['code'] // 100}xx", **self.labels())
            metrics.REQUEST_LATENCY.labels(**labels).observe(time.perf_counter() - start)
            metrics.REQUESTS.labels(**labels).inc()


FEEDBACK_ERRORS = {**{k: v for k, v in ERRORS.items() if k != 413},
                   503: {"model": ErrorResponse, "description": "feedback store unreachable: "
                                                            "nothing stored, retry"}}


def create_app(get_predictor: Callable[[], Predictor], max_batch: int = 1000,
               get_feedback: Callable[[], FeedbackStore] | None = None) -> FastAPI:
    """The HTTP app; ``get_predictor`` returns the service's loaded predictor and
    ``get_feedback`` its feedback store (no /feedback route without one)."""
    app = FastAPI(title="taxi-serve", version="1", docs_url=None, redoc_url=None,
                  description="NYC taxi trip duration and fare predictions")
    app.add_middleware(Timing, labels=lambda: get_predictor().labels)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse({"error": "malformed JSON body", "detail": [
                {"field": "body", "rule": "must be a valid JSON document"}]}, status_code=400)
        details = error_details(errors)
        return JSONResponse({"error": describe(details), "detail": details}, status_code=422)

    @app.post("/predict", response_model=Prediction, responses=ERRORS)
    async def predict(trip: TripRequest) -> Prediction:
        """Duration and fare of one trip."""
        # serialised once by pydantic-core; response_model stays for the OpenAPI schema
        return Response((await get_predictor().predict([trip]))[0].model_dump_json(),
                        media_type="application/json")

    @app.post("/predict_batch", response_model=BatchResponse, responses=ERRORS,
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                  "schema": {"$ref": "#/components/schemas/BatchRequest"}}}}})
    async def predict_batch(request: Request) -> BatchResponse:
        """Up to the configured limit of trips, answered in order."""
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "malformed JSON body", "detail": [
                {"field": "body", "rule": "must be a valid JSON document"}]}, status_code=400)
        trips = body.get("trips") if isinstance(body, dict) else None
        if isinstance(trips, list) and len(trips) > max_batch:
            rule = f"at most {max_batch} trips per batch (got {len(trips)})"
            return JSONResponse({"error": f"trips: {rule}",
                                 "detail": [{"field": "trips", "rule": rule}]}, status_code=413)
        try:
            batch = BatchRequest.model_validate(body)
        except ValidationError as exc:
            details = error_details(exc.errors())
            return JSONResponse({"error": describe(details), "detail": details},
                                status_code=422)
        answer = BatchResponse(predictions=await get_predictor().predict(batch.trips))
        return Response(answer.model_dump_json(), media_type="application/json")

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

    def openapi():  # BatchRequest is parsed by hand (for 413): publish its schema anyway
        schema = original()
        schema.setdefault("components", {}).setdefault("schemas", {})
        for name, sub in BatchRequest.model_json_schema(
                ref_template="#/components/schemas/{model}").pop("$defs", {}).items():
            schema["components"]["schemas"].setdefault(name, sub)
        batch_schema = BatchRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        batch_schema["properties"]["trips"]["maxItems"] = max_batch
        schema["components"]["schemas"]["BatchRequest"] = batch_schema
        return schema

    app.openapi = openapi
    return app
