"""gRPC beside BentoML (DESIGN.md decision 2): a grpc.aio server in the service's own event
loop, sharing the loaded predictor, with the standard health service and reflection."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from pydantic import ValidationError
from redis.exceptions import RedisError

from service.feedback import FeedbackRequest, FeedbackStore
from service.grpc_gen import taxi_pb2, taxi_pb2_grpc
from service.http_app import describe, error_details
from service.predictor import Answers, Predictor
from service.schemas import TripRequest

log = logging.getLogger("taxi.grpc")
SERVICE_NAME = taxi_pb2.DESCRIPTOR.services_by_name["TripPredictor"].full_name


class Malformed:
    """A request body protobuf could not parse. grpc.aio answers UNKNOWN and logs a traceback
    when a deserializer raises, before any handler runs; so the deserializer returns this
    instead and the handler answers INVALID_ARGUMENT and counts it like any other request."""

    def __init__(self, message_cls, error: Exception):
        self.name, self.error = message_cls.DESCRIPTOR.full_name, error


def lenient(message_cls) -> Callable[[bytes], object]:
    def parse(data: bytes):
        try:
            return message_cls.FromString(data)
        except DecodeError as exc:
            return Malformed(message_cls, exc)
    return parse


# method: (request, response) message classes, as declared in proto/taxi/v1/taxi.proto
METHODS = {"Predict": (taxi_pb2.PredictRequest, taxi_pb2.Prediction),
           "PredictBatch": (taxi_pb2.PredictBatchRequest, taxi_pb2.PredictBatchResponse),
           "Feedback": (taxi_pb2.FeedbackRequest, taxi_pb2.FeedbackReply)}


def add_servicer(servicer: TripPredictorServicer, server: grpc.aio.Server) -> None:
    """The generated ``add_TripPredictorServicer_to_server`` with lenient deserializers."""
    handlers = {name: grpc.unary_unary_rpc_method_handler(
                    getattr(servicer, name), request_deserializer=lenient(request),
                    response_serializer=response.SerializeToString)
                for name, (request, response) in METHODS.items()}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME,
                                                                          handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)


def to_trip(msg: taxi_pb2.PredictRequest, prefix: str = "") -> dict:
    """A proto request as the JSON contract's fields (absent optionals stay absent)."""
    trip = {"pickup_zone_id": msg.pickup_zone_id, "dropoff_zone_id": msg.dropoff_zone_id,
            "pickup_datetime": msg.pickup_datetime}
    if msg.HasField("passenger_count"):
        trip["passenger_count"] = msg.passenger_count
    if msg.HasField("trip_distance_miles"):
        trip["trip_distance_miles"] = msg.trip_distance_miles
    if msg.request_id:
        trip["request_id"] = msg.request_id
    return trip


def validate_trips(msgs) -> tuple[list[TripRequest], list[dict]]:
    """The trips of a batch, and a {field, rule} per broken rule."""
    trips, details = [], []
    for i, msg in enumerate(msgs):
        try:
            trips.append(TripRequest.model_validate(to_trip(msg)))
        except ValidationError as exc:
            details += [{"field": f"trips.{i}.{d['field']}", "rule": d["rule"]}
                        for d in error_details(exc.errors())]
    return trips, details


def to_protos(answers: Answers) -> list[taxi_pb2.Prediction]:
    return [taxi_pb2.Prediction(**row) for row in answers.rows()]


class TripPredictorServicer(taxi_pb2_grpc.TripPredictorServicer):
    """Validates with the same pydantic rules as HTTP and calls the same predictor."""

    def __init__(self, get_predictor: Callable[[], Predictor], max_batch: int,
                 get_feedback: Callable[[], FeedbackStore] | None = None):
        self.get_predictor, self.max_batch = get_predictor, max_batch
        self.get_feedback = get_feedback

    def _observe(self, endpoint: str, start: float, code: grpc.StatusCode) -> None:
        status = "ok" if code == grpc.StatusCode.OK else code.name.lower()
        self.get_predictor().requests.observe("grpc", endpoint, status,
                                              time.perf_counter() - start)

    async def _reject_malformed(self, endpoint: str, start: float, request, context) -> None:
        if isinstance(request, Malformed):
            self._observe(endpoint, start, grpc.StatusCode.INVALID_ARGUMENT)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"not a valid {request.name} message: {request.error}")

    async def Predict(self, request, context):  # noqa: N802 - gRPC method name
        start = time.perf_counter()
        await self._reject_malformed("Predict", start, request, context)
        try:
            trip = TripRequest.model_validate(to_trip(request))
        except ValidationError as exc:
            self._observe("Predict", start, grpc.StatusCode.INVALID_ARGUMENT)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                describe(error_details(exc.errors())))
        result = to_protos(await self.get_predictor().answer([trip]))[0]
        self._observe("Predict", start, grpc.StatusCode.OK)
        return result

    async def PredictBatch(self, request, context):  # noqa: N802 - gRPC method name
        start = time.perf_counter()
        await self._reject_malformed("PredictBatch", start, request, context)
        if not request.trips:
            self._observe("PredictBatch", start, grpc.StatusCode.INVALID_ARGUMENT)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "trips: at least one trip")
        if len(request.trips) > self.max_batch:
            self._observe("PredictBatch", start, grpc.StatusCode.INVALID_ARGUMENT)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"trips: at most {self.max_batch} trips per batch "
                                f"(got {len(request.trips)})")
        # validating many trips held the loop: on a thread, from the size at which the
        # predictor runs its models on one too
        if len(request.trips) >= self.get_predictor().offload_from:
            trips, details = await asyncio.get_running_loop().run_in_executor(
                None, validate_trips, request.trips)
        else:
            trips, details = validate_trips(request.trips)
        if details:
            self._observe("PredictBatch", start, grpc.StatusCode.INVALID_ARGUMENT)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, describe(details))
        results = to_protos(await self.get_predictor().answer(trips))
        self._observe("PredictBatch", start, grpc.StatusCode.OK)
        return taxi_pb2.PredictBatchResponse(predictions=results)

    async def Feedback(self, request, context):  # noqa: N802 - gRPC method name
        start = time.perf_counter()
        await self._reject_malformed("Feedback", start, request, context)
        fields = {"request_id": request.request_id}
        for name in ("actual_duration_seconds", "actual_fare_usd"):
            if request.HasField(name):
                fields[name] = getattr(request, name)
        try:
            fb = FeedbackRequest.model_validate(fields)
        except ValidationError as exc:
            self._observe("Feedback", start, grpc.StatusCode.INVALID_ARGUMENT)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                describe(error_details(exc.errors())))
        if self.get_feedback is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "feedback is not configured")
        try:
            reply = await self.get_feedback().accept(fb)
        except (RedisError, OSError, TimeoutError):
            self._observe("Feedback", start, grpc.StatusCode.UNAVAILABLE)
            await context.abort(grpc.StatusCode.UNAVAILABLE,
                                "feedback store unreachable: nothing was stored, retry later")
        self._observe("Feedback", start, grpc.StatusCode.OK)
        return taxi_pb2.FeedbackReply(request_id=reply.request_id, status=reply.status,
                                      model_version=reply.model_version or "",
                                      track=reply.track or "")


async def start(get_predictor: Callable[[], Predictor], port: int, max_batch: int,
                get_feedback: Callable[[], FeedbackStore] | None = None,
                host: str = "127.0.0.1") -> tuple[grpc.aio.Server, health.aio.HealthServicer]:
    """Start serving on ``host:port`` (SO_REUSEPORT: every BentoML worker can bind it)."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 1),
                                      ("grpc.max_receive_message_length", 16 << 20)])
    add_servicer(TripPredictorServicer(get_predictor, max_batch, get_feedback), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise RuntimeError(f"gRPC could not bind {host}:{port}")
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("gRPC TripPredictor serving on %s:%d", host, bound)
    return server, health_servicer
