"""The one prediction code path behind HTTP and gRPC: validate -> features -> both models."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np

from service import metrics
from service.online_features import OnlineFeatures
from service.schemas import Prediction, TripRequest
from training.model import ZoneGeo, derive, predict_all, request_columns
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


class ModelMismatch(RuntimeError):
    """The model's metadata does not match the feature services this service serves."""


def local_time(value: str) -> datetime:
    """New York wall-clock time of an ISO 8601 string (naive = already New York local).

    Only the local calendar (hour, weekday, minute) matters to the models, so naive times on
    DST days, even the skipped 02:xx hour, need no conversion and cannot fail.
    """
    parsed = datetime.fromisoformat(value)
    return parsed.astimezone(NY) if parsed.tzinfo else parsed


class Predictor:
    """Loaded models + online feature client; safe to share between HTTP and gRPC."""

    def __init__(self, bundle: Bundle, redis_url: str, track: str, timeout_s: float = 0.05):
        expected = {"duration": "duration_v1", "fare": "fare_v1"}
        services = bundle.metadata.get("feature_services")
        if services != expected:
            raise ModelMismatch(f"model {bundle.tag} was trained on feature services "
                                f"{services}, this service serves {expected}")
        self.bundle, self.track = bundle, track
        self.version = bundle.tag.split(":", 1)[1]
        self.geo = ZoneGeo(bundle.zones)
        feast_cols = sorted({c for cols in bundle.columns.values() for c in cols if "__" in c})
        self.features = OnlineFeatures(redis_url, feast_cols, bundle.fallback, timeout_s)
        self.labels = {"model_version": self.version, "track": track}
        # The logged vector: every model column once, in the reference sample's order.
        self.log_columns = sorted({c for cols in bundle.columns.values() for c in cols})
        self.categorical = [c for c in self.log_columns if c in CATEGORICAL]
        self.store_features = [c for c in self.log_columns
                               if "__" in c or c in DERIVED_FROM_STORE]
        self.log = None  # a service.predlog.PredictionLog when the service logs predictions

    @classmethod
    def load(cls, tag: str, redis_url: str, track: str, timeout_s: float = 0.05) -> Predictor:
        """Load a model version from the BentoML store (``taxi_trip:champion`` resolves)."""
        return cls(load_bundle(tag), redis_url, track, timeout_s)

    async def predict(self, trips: list[TripRequest]) -> list[Prediction]:
        """Answer every trip, in order. Never raises for Redis trouble: it degrades."""
        n = len(trips)
        local = [local_time(t.pickup_datetime) for t in trips]
        keys = [(t.pickup_zone_id, t.dropoff_zone_id, lt.weekday() * 24 + lt.hour)
                for t, lt in zip(trips, local)]
        start = time.perf_counter()
        rows, online = await self.features.fetch(keys)
        metrics.FEATURE_FETCH_LATENCY.labels("redis" if online else "fallback").observe(
            time.perf_counter() - start)
        cols = request_columns(
            self.geo, [k[0] for k in keys], [k[1] for k in keys],
            [lt.hour for lt in local], [lt.weekday() for lt in local],
            [lt.minute for lt in local],
            [np.nan if t.passenger_count is None else t.passenger_count for t in trips],
            [np.nan if t.trip_distance_miles is None else t.trip_distance_miles for t in trips])
        for name in self.features.columns:
            cols[name] = np.fromiter((r.get(name, np.nan) for r in rows), "float64", n)
        full = derive(cols)
        preds = predict_all(self.bundle.boosters, self.bundle.columns, full, n)
        degraded = [] if online else [FEATURES_UNAVAILABLE]
        if not online:
            metrics.FALLBACKS.labels(**self.labels).inc(n)
        metrics.TRIPS.labels(**self.labels).inc(n)
        # A trip takes time and costs >= 0.
        durations = np.maximum(preds["duration"], 1.0).round(1)
        fares = np.maximum(preds["fare"], 0.0).round(2)
        out = []
        for i, trip in enumerate(trips):
            duration, fare = float(durations[i]), float(fares[i])
            metrics.PREDICTED_DURATION.labels(**self.labels).observe(duration)
            metrics.PREDICTED_FARE.labels(**self.labels).observe(fare)
            out.append(Prediction(
                request_id=trip.request_id or uuid.uuid4().hex,
                duration_seconds=duration, fare_usd=fare,
                model_version=self.version, track=self.track, degraded=list(degraded)))
        if self.log is not None:
            self.log.record([p.request_id for p in out], durations, fares, full)
        return out

    async def ready(self) -> bool:
        """Models are loaded; features are reachable, or degraded mode answers without them."""
        return await self.features.ping() or bool(self.features.fallback["route_stats"])
