"""The BentoML service: HTTP on :3000 (BentoML), gRPC on :50051 (grpc.aio, same process).

The model is declared on the class, so ``bentoml build`` packs it into the Bento; which version
is served comes from configuration (``TAXI_MODEL_TAG``, an immutable tag; ``taxi_trip:champion``
resolves to the current champion when the class is defined).
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os

import bentoml

from common.settings import Settings
from service import slow_clients
from service.accuracy import AccuracyReporter, parse_windows
from service.drain import Drain
from service.feedback import FeedbackStore
from service.http_app import create_app
from service.predictor import Predictor
from service.predlog import PredictionLog
from training.register import load_bundle, resolve_tag

log = logging.getLogger("taxi.service")
_state: dict = {}


def _trim_heap() -> None:
    """Give the heap that loading freed (parquet buffers, model parsing) back to the OS:
    glibc keeps it otherwise, ~20 MB of each worker's RSS."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def current_predictor() -> Predictor:
    return _state["predictor"]


def current_feedback() -> FeedbackStore:
    return _state["feedback"]


def draining() -> bool:
    drain = _state.get("drain")
    return drain is not None and drain.active


def _max_batch() -> int:
    return int(os.environ.get("TAXI_MAX_BATCH", "1000"))


def _model_tag() -> str:
    """TAXI_MODEL_TAG, else the champion; inside a Bento with no champion pointer, the model
    packed with it (a Bento holds exactly one taxi_trip version)."""
    try:
        return resolve_tag(os.environ.get("TAXI_MODEL_TAG", "taxi_trip:champion"))
    except LookupError:
        tag = str(bentoml.models.get("taxi_trip:latest").tag)
        log.warning("no champion pointer: serving the newest taxi_trip model %s", tag)
        return tag


def _install_read_timeouts() -> None:
    settings = Settings()
    slow_clients.install(settings.header_timeout_s, settings.body_timeout_s)


# before BentoML's worker builds uvicorn's Config (it loads this module first)
_install_read_timeouts()
http_app = create_app(current_predictor, max_batch=_max_batch(), get_feedback=current_feedback,
                      draining=draining)


@bentoml.service(
    name="taxi_serve",
    workers=int(os.environ.get("TAXI_WORKERS", "1")),
    traffic={"timeout": 10},
    logging={"access": {"enabled": False}},  # access logs cost ~30% of throughput here
    # No trace exporter is configured, and building a span per prediction cost ~15% of a
    # worker's time (py-spy); health, metrics and other routes are still traced.
    tracing={"excluded_urls": ["/predict", "/predict_batch"]},
)
@bentoml.asgi_app(http_app, path="/")
class TaxiService:
    """Trip duration and fare for the ride app."""

    model = bentoml.models.BentoModel(_model_tag())

    def __init__(self) -> None:
        self.settings = Settings()
        # BentoML leaves the root logger at WARNING; the chart's logLevel applies to ours.
        logging.getLogger("taxi").setLevel(self.settings.log_level)
        if not self.settings.redis_url:
            raise RuntimeError("REDIS_URL is not set: `python -m service` starts a local Redis")
        try:
            bundle = load_bundle(str(self.model.tag), compiled=self.settings.compiled_model)
            self.predictor = Predictor(bundle, self.settings.redis_url, self.settings.track,
                                       self.settings.redis_timeout_ms / 1000.0,
                                       self.settings.batch_threads)
        except Exception:
            log.exception("model %s failed to load: the service stays unready", self.model.tag)
            raise
        s = self.settings
        if s.predlog_enabled:
            self.predictor.log = PredictionLog(
                s.redis_url, self.predictor.version, s.track, self.predictor.log_columns,
                capacity=s.predlog_buffer,
                stream_maxlen=s.predlog_maxlen, ttl_s=s.feedback_ttl_s)
        self.feedback = FeedbackStore(s.redis_url, ttl_s=s.feedback_ttl_s)
        self.accuracy = AccuracyReporter(self.predictor, parse_windows(s.accuracy_windows),
                                         s.accuracy_refresh_s)
        self.drain = Drain(s.drain_file)
        _state["predictor"], _state["feedback"], _state["drain"] = (self.predictor,
                                                                    self.feedback, self.drain)
        self.grpc_server = None
        # Everything loaded so far lives as long as the worker: keep it out of the cyclic
        # GC's scans, whose full passes over Feast/pandas/BentoML objects stall requests.
        gc.collect()
        gc.freeze()
        _trim_heap()
        log.info("serving %s as track %s (%s trees)", self.model.tag, self.settings.track,
                 bundle.engine)

    @bentoml.on_startup
    async def start_grpc(self) -> None:
        """Start gRPC, the accuracy refresher and the drain watch in this worker's loop."""
        self.accuracy.start(self.settings.redis_url)
        self.drain.start()
        if self.settings.grpc_port:
            from service import grpc_server

            self.grpc_server, _ = await grpc_server.start(
                current_predictor, self.settings.grpc_port, self.settings.max_batch,
                current_feedback, host=str(self.settings.host))

    @bentoml.on_shutdown
    async def stop_grpc(self) -> None:
        if self.grpc_server is not None:
            await self.grpc_server.stop(grace=2.0)
        await self.accuracy.stop()
        await self.drain.stop()
        if self.predictor.log is not None:
            await self.predictor.log.close()
        await self.feedback.close()
        await self.predictor.features.close()

    async def __is_ready__(self) -> bool:
        # a draining pod is on its way out: not ready, whatever its features say
        return not self.drain.check() and await self.predictor.ready()
