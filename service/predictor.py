"""The one prediction code path behind HTTP and gRPC: validate -> features -> both models."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np

from service import metrics
from service.online_features import OnlineFeatures
from service.schemas import Prediction, TripRequest
from training.model import (
    SingleRow,
    ZoneGeo,
    column_index,
    derive,
    matrix,
    model_columns,
    predict_matrix,
    request_columns,
)
from training.register import Bundle, load_bundle

log = logging.getLogger("taxi.predictor")
NY = ZoneInfo("America/New_York")
FEATURES_UNAVAILABLE = "features_unavailable"
# Columns that hold categories, not quantities (the drift monitor tests them with chi-squared).
CATEGORICAL = ("pickup_zone_id", "dropoff_zone_id", "pickup_borough", "dropoff_borough", "hour",
               "weekday")
# Derived columns that depend on feature-store values (see training.model.derive); with the
# Feast columns (``view__feature``) they are the "store" features, as opposed to what the
# ride app sent plus static zone geometry.
DERIVED_FROM_STORE = ("eff_distance", "eta_from_speed_s", "fare_from_per_mile")


_EXECUTOR: list[ThreadPoolExecutor] = []


def _batch_executor() -> ThreadPoolExecutor:
    """One thread for large batches, created on first use (after BentoML forks its workers):
    batches queue behind each other instead of competing for the two cores with the loop."""
    if not _EXECUTOR:
        _EXECUTOR.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="taxi-batch"))
    return _EXECUTOR[0]


class ModelMismatch(RuntimeError):
    """The model's metadata does not match the feature services this service serves."""


def local_time(value: str) -> datetime:
    """New York wall-clock time of an ISO 8601 string (naive = already New York local).

    Only the local calendar (hour, weekday, minute) matters to the models, so naive times on
    DST days, even the skipped 02:xx hour, need no conversion and cannot fail.
    """
    parsed = datetime.fromisoformat(value)
    return parsed.astimezone(NY) if parsed.tzinfo else parsed


@dataclass
class Answers:
    """One request's answers as columns; each protocol formats them its own way."""

    ids: list[str]
    durations: list[float]
    fares: list[float]
    version: str
    track: str
    degraded: list[str]

    def rows(self) -> list[dict]:
        """The answers as ``Prediction`` fields, in the contract's order."""
        return [{"request_id": rid, "duration_seconds": d, "fare_usd": f,
                 "model_version": self.version, "track": self.track, "degraded": self.degraded}
                for rid, d, f in zip(self.ids, self.durations, self.fares)]

    def predictions(self) -> list[Prediction]:
        return [Prediction.model_construct(**{**row, "degraded": list(self.degraded)})
                for row in self.rows()]


class Predictor:
    """Loaded models + online feature client; safe to share between HTTP and gRPC."""

    def __init__(self, bundle: Bundle, redis_url: str, track: str, timeout_s: float = 0.05,
                 batch_threads: int = 1):
        expected = {"duration": "duration_v1", "fare": "fare_v1"}
        services = bundle.metadata.get("feature_services")
        if services != expected:
            raise ModelMismatch(f"model {bundle.tag} was trained on feature services "
                                f"{services}, this service serves {expected}")
        self.bundle, self.track = bundle, track
        self.version = bundle.tag.split(":", 1)[1]
        self.geo = ZoneGeo(bundle.zones)
        # The one matrix a request builds: every model column once (also the logged vector,
        # in the reference sample's order); each booster reads its columns from it.
        self.log_columns = model_columns(bundle.columns)
        feast_cols = [c for c in self.log_columns if "__" in c]
        self.features = OnlineFeatures(redis_url, feast_cols, bundle.fallback, timeout_s)
        self._single = SingleRow(self.geo, self.log_columns, self.features.columns)
        self.labels = {"model_version": self.version, "track": track}
        self._index = column_index(bundle.columns, self.log_columns)
        self._eff = self.log_columns.index("eff_distance")
        self.categorical = [c for c in self.log_columns if c in CATEGORICAL]
        self.store_features = [c for c in self.log_columns
                               if "__" in c or c in DERIVED_FROM_STORE]
        # Batches of at least this many trips predict on ``batch_threads`` threads (100
        # compiled trips: 5.8 ms on one thread, 4.4 ms on two; one trip gains nothing).
        self.batch_threads, self.parallel_from = batch_threads, 64
        # Batches of at least this many trips run the models on a worker thread.
        self.offload_from = 32
        self.metrics = metrics.PredictorMetrics(self.labels, bundle.engine)
        self.requests = metrics.RequestMetrics(self.labels)  # HTTP and gRPC request metrics
        self.log = None  # a service.predlog.PredictionLog when the service logs predictions

    @classmethod
    def load(cls, tag: str, redis_url: str, track: str, timeout_s: float = 0.05,
             batch_threads: int = 1) -> Predictor:
        """Load a model version from the BentoML store (``taxi_trip:champion`` resolves)."""
        return cls(load_bundle(tag), redis_url, track, timeout_s, batch_threads)

    async def answer(self, trips: list[TripRequest]) -> Answers:
        """Answer every trip, in order, as columns. Never raises for Redis trouble: it
        degrades."""
        n = len(trips)
        local = [local_time(t.pickup_datetime) for t in trips]
        pickup = [t.pickup_zone_id for t in trips]
        dropoff = [t.dropoff_zone_id for t in trips]
        hour = [lt.hour for lt in local]
        weekday = [lt.weekday() for lt in local]
        start = time.perf_counter()
        feats, online = await self.features.fetch(
            [(p, d, w * 24 + h) for p, d, w, h in zip(pickup, dropoff, weekday, hour)])
        self.metrics.fetched(online, time.perf_counter() - start)
        args = (trips, pickup, dropoff, hour, weekday, local, feats)
        if n >= self.offload_from:
            # Off the event loop: a 1000-trip batch held it for tens of ms, and single trips
            # waiting for their Redis reply meanwhile ran out of their 50 ms budget.
            loop = asyncio.get_running_loop()
            x, durations, fares = await loop.run_in_executor(_batch_executor(), self._model,
                                                             *args)
        else:
            x, durations, fares = self._model(*args)
        self.metrics.predicted(n, online, durations, fares)
        ids = [t.request_id for t in trips]
        if not all(ids):  # generated: one random id per request, indexed in a batch
            base = uuid.uuid4().hex
            ids = [rid or (base if n == 1 else f"{base}-{i}") for i, rid in enumerate(ids)]
        if self.log is not None:
            self.log.record(ids, durations, fares, x)
        return Answers(ids, durations.tolist(), fares.tolist(), self.version, self.track,
                       [] if online else [FEATURES_UNAVAILABLE])

    def _model(self, trips, pickup, dropoff, hour, weekday, local, feats):
        """The model matrix and both predictions (CPU only: safe on a worker thread)."""
        n = len(trips)
        if n == 1:  # the ride app's request: one row without per-column numpy calls
            t, lt = trips[0], local[0]
            x = self._single.row(
                pickup[0], dropoff[0], hour[0], weekday[0], lt.minute,
                np.nan if t.passenger_count is None else t.passenger_count,
                np.nan if t.trip_distance_miles is None else t.trip_distance_miles, feats[0])
            return self._predict(x)
        cols = request_columns(
            self.geo, pickup, dropoff, hour, weekday, [lt.minute for lt in local],
            [np.nan if t.passenger_count is None else t.passenger_count for t in trips],
            [np.nan if t.trip_distance_miles is None else t.trip_distance_miles for t in trips])
        for j, name in enumerate(self.features.columns):
            cols[name] = feats[:, j]
        return self._predict(matrix(derive(cols), self.log_columns, n))

    def _predict(self, x: np.ndarray):
        threads = self.batch_threads if len(x) >= self.parallel_from else 1
        preds = predict_matrix(self.bundle.boosters, self._index, x, x[:, self._eff], threads)
        # A trip takes time and costs >= 0.
        durations = np.maximum(preds["duration"], 1.0).round(1)
        fares = np.maximum(preds["fare"], 0.0).round(2)
        return x, durations, fares

    async def predict(self, trips: list[TripRequest]) -> list[Prediction]:
        """Answer every trip, in order (``answer`` as contract objects)."""
        return (await self.answer(trips)).predictions()

    async def ready(self) -> bool:
        """Models are loaded; features are reachable, or degraded mode answers without them."""
        return await self.features.ping() or bool(self.features.fallback["route_stats"])
