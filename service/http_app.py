"""HTTP routes of the contract (docs/api.md), mounted into the BentoML service.

Not ``@bentoml.api``, because the public contract needs what BentoML 1.4's API layer does not
give: 422 naming the field and rule (BentoML answers 400), 400 for malformed JSON, 413 for an
oversized body or batch, 415 for another content type. Every route is plain ASGI
(``JsonRoutes``): the body is parsed and validated in one pass by pydantic-core and the answer
is written as one JSON document, which took ~0.2 ms less per request than the same routes
through FastAPI's routing, dependency and response layers (a tenth of the latency budget), and
every 4xx has one shape, ``{"error", "detail": [{"field", "rule"}]}``. FastAPI only serves
``/openapi.json`` (service/openapi_doc.py). BentoML still owns the server, the workers,
/healthz, /readyz and /metrics.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable

import pydantic_core
from pydantic import BaseModel, ValidationError
from redis.exceptions import RedisError

from service.feedback import FeedbackRequest, FeedbackStore
from service.openapi_doc import document_app
from service.predictor import Predictor
from service.schemas import BatchRequest, TripRequest

log = logging.getLogger("taxi.http")
# BentoML's own GET routes: a request with another method falls through BentoML's router to
# this app (mounted at "/"), which answers 405 as it does for its own routes.
BENTOML_GET = frozenset({"/", "/livez", "/healthz", "/readyz", "/metrics", "/schema.json",
                         "/docs.json"})
FEEDBACK_MAX_BODY = 16 * 1024  # one feedback is ~100 bytes of JSON
OFFLOAD_BYTES = 16 * 1024  # batch bodies larger than this (~100 trips) parse on a thread
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


def error_details(errors: list[dict]) -> list[dict]:
    """Pydantic errors as {field, rule}: ``trips.3.pickup_zone_id`` / the broken rule."""
    out = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        rule = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            rule = "unknown field: not part of the contract"
        elif rule.startswith("Value error, "):
            rule = rule[len("Value error, "):]
        out.append({"field": ".".join(loc) or "body", "rule": rule})
    return out


def describe(details: list[dict]) -> str:
    return "; ".join(f"{d['field']}: {d['rule']}" for d in details)


def error_body(details: list[dict], error: str | None = None) -> dict:
    return {"error": error or describe(details), "detail": details}


MALFORMED = error_body([{"field": "body", "rule": "must be a valid JSON document"}],
                       "malformed JSON body")
NOT_UTF8 = error_body([{"field": "body", "rule": "must be UTF-8 JSON without a byte-order "
                                                 "mark"}], "body is not UTF-8 JSON")


def content_type_error(headers: list[tuple[bytes, bytes]]) -> dict | None:
    """None when the body is declared ``application/json`` (charset, if any, utf-8)."""
    value = next((v for k, v in headers if k == b"content-type"), b"").decode("latin-1")
    media, *params = [p.strip().lower() for p in value.split(";")]
    charset = next((p.split("=", 1)[1].strip('" ') for p in params
                    if p.startswith("charset=")), "utf-8")
    if media == "application/json" and charset == "utf-8":
        return None
    got = value or "none"
    return error_body([{"field": "content-type",
                        "rule": f"must be application/json (UTF-8), got {got}"}])


def parse(model: type[BaseModel], raw: bytes) -> tuple[int, dict] | BaseModel:
    """The validated model, or (status, error body)."""
    if raw.startswith(_BOMS):
        return 400, NOT_UTF8
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors()
        if any(e["type"] == "json_invalid" for e in errors):
            # JSON text never holds a raw NUL: one means UTF-16 or UTF-32 without a BOM
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return 400, NOT_UTF8
            return 400, NOT_UTF8 if b"\x00" in raw else MALFORMED
        return 422, error_body(error_details(errors))


class JsonRoutes:
    """``POST /predict``, ``/predict_batch`` and ``/feedback`` as plain ASGI; ``GET
    /openapi.json`` goes to ``docs``; anything else is a 404 or 405 in the error shape."""

    def __init__(self, docs, get_predictor: Callable[[], Predictor], max_batch: int,
                 get_feedback: Callable[[], FeedbackStore] | None = None,
                 draining: Callable[[], bool] | None = None):
        self.docs, self.get_predictor, self.max_batch = docs, get_predictor, max_batch
        self.get_feedback, self.draining = get_feedback, draining
        self.routes = {"/predict": self.predict, "/predict_batch": self.predict_batch}
        if get_feedback is not None:
            self.routes["/feedback"] = self.feedback
        # a trip is ~150 bytes of JSON; anything far beyond the batch limit is refused unread
        batch_body = 64 * 1024 + 2048 * max_batch
        self.max_body = {"/predict": 64 * 1024, "/predict_batch": batch_body,
                         "/feedback": FEEDBACK_MAX_BODY}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.docs(scope, receive, send)
        path, method = scope.get("path"), scope["method"]
        if path == "/openapi.json" and method in ("GET", "HEAD"):
            return await self.docs(scope, receive, send)
        start = time.perf_counter()
        headers = [(b"content-type", b"application/json")]
        try:
            status, body = await self.route(path, method, scope, receive, headers)
        except Exception:  # never a bare 500 without a body, and always counted
            log.exception("%s failed", path)
            status, body = 500, error_body([], "internal error")
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        headers.append((b"content-length", str(len(body)).encode()))
        if self.draining is not None and self.draining():
            headers.append((b"connection", b"close"))  # service/drain.py
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        label = path if path in self.routes else "other"
        self.get_predictor().requests.observe("http", label, f"{status // 100}xx",
                                              time.perf_counter() - start)

    async def route(self, path, method, scope, receive, headers) -> tuple[int, bytes | dict]:
        handler = self.routes.get(path)
        if handler is None:
            if path == "/openapi.json" or (path in BENTOML_GET and method not in ("GET",
                                                                                   "HEAD")):
                headers.append((b"allow", b"GET, HEAD"))
                return 405, error_body([{"field": "method", "rule": "must be GET"}],
                                       f"method not allowed: {method} {path}")
            return 404, error_body([{"field": "path", "rule": "must be one of "
                                     + ", ".join(sorted(self.routes))}], f"not found: {path}")
        if method != "POST":
            headers.append((b"allow", b"POST"))
            return 405, error_body([{"field": "method", "rule": "must be POST"}],
                                   f"method not allowed: {method} {path}")
        if (problem := content_type_error(scope["headers"])) is not None:
            return 415, problem
        limit = self.max_body[path]
        raw = await _read_body(receive, limit, scope["headers"])
        if raw is None:
            return 413, error_body([{"field": "body", "rule": f"at most {limit} bytes"}],
                                   f"request body larger than {limit} bytes")
        return await handler(raw)

    async def predict(self, raw: bytes) -> tuple[int, bytes | dict]:
        trip = parse(TripRequest, raw)
        if isinstance(trip, tuple):
            return trip
        answers = await self.get_predictor().answer([trip])
        return 200, pydantic_core.to_json(answers.rows()[0])

    async def predict_batch(self, raw: bytes) -> tuple[int, bytes | dict]:
        if len(raw) > OFFLOAD_BYTES:  # parsing 1000 trips held the loop for ms: a thread
            batch = await asyncio.get_running_loop().run_in_executor(None, self.parse_batch,
                                                                     raw)
        else:
            batch = self.parse_batch(raw)
        if isinstance(batch, tuple):
            return batch
        answers = await self.get_predictor().answer(batch.trips)
        return 200, pydantic_core.to_json({"predictions": answers.rows()})

    def parse_batch(self, raw: bytes) -> tuple[int, dict] | BatchRequest:
        if raw.startswith(_BOMS):
            return 400, NOT_UTF8
        try:
            body = pydantic_core.from_json(raw)
        except ValueError:
            return parse(BatchRequest, raw)  # the same 400 as the other routes
        trips = body.get("trips") if isinstance(body, dict) else None
        if isinstance(trips, list) and len(trips) > self.max_batch:
            rule = f"at most {self.max_batch} trips per batch (got {len(trips)})"
            return 413, error_body([{"field": "trips", "rule": rule}])
        try:
            return BatchRequest.model_validate(body)
        except ValidationError as exc:
            return 422, error_body(error_details(exc.errors()))

    async def feedback(self, raw: bytes) -> tuple[int, bytes | dict]:
        fb = parse(FeedbackRequest, raw)
        if isinstance(fb, tuple):
            return fb
        try:
            reply = await self.get_feedback().accept(fb)
        except (RedisError, OSError, TimeoutError):
            return 503, error_body([], "feedback store unreachable: nothing was stored, "
                                   "retry later")
        return 202, reply.model_dump_json().encode()


async def _read_body(receive, limit: int, headers) -> bytes | None:
    """The whole request body, or None once it (or its declared length) passes ``limit``."""
    declared = next((v for k, v in headers if k == b"content-length"), None)
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
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


def create_app(get_predictor: Callable[[], Predictor], max_batch: int = 1000,
               get_feedback: Callable[[], FeedbackStore] | None = None,
               draining: Callable[[], bool] | None = None):
    """The HTTP app; ``get_predictor`` returns the service's loaded predictor,
    ``get_feedback`` its feedback store (no /feedback route without one) and ``draining``
    whether the pod is draining (service/drain.py)."""
    docs = document_app(max_batch, feedback=get_feedback is not None)
    return JsonRoutes(docs, get_predictor, max_batch, get_feedback, draining)
