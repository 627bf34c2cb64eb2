"""The naive reference a user writes first: BentoML defaults (sync API, access log on, one
worker), Feast ``get_online_features`` per request, a pandas frame per prediction."""

from __future__ import annotations

import os
from datetime import datetime

import bentoml
import pandas as pd

from common.paths import FEATURE_REPO


@bentoml.service(name="taxi_naive")
class NaiveTaxi:
    def __init__(self) -> None:
        from training import store
        from training.register import load_bundle

        self.bundle = load_bundle(os.environ["TAXI_MODEL_TAG"])
        self.store = store.open_store(FEATURE_REPO, os.environ["REDIS_URL"])
        self.service = self.store.get_feature_service("trip_v1")

    @bentoml.api
    def predict(self, pickup_zone_id: int, dropoff_zone_id: int, pickup_datetime: str,
                trip_distance_miles: float | None = None) -> dict:
        from training.features import route_id
        from training.model import ZoneGeo, request_columns

        local = datetime.fromisoformat(pickup_datetime)
        how = local.weekday() * 24 + local.hour
        feats = self.store.get_online_features(
            features=self.service, full_feature_names=True,
            entity_rows=[{"pickup_zone_id": pickup_zone_id, "dropoff_zone_id": dropoff_zone_id,
                          "hour_of_week": how,
                          "route_id": route_id(pickup_zone_id, dropoff_zone_id)}]).to_dict()
        cols = request_columns(ZoneGeo(self.bundle.zones), [pickup_zone_id], [dropoff_zone_id],
                               [local.hour], [local.weekday()], [local.minute], [float("nan")],
                               [trip_distance_miles or float("nan")])
        frame = pd.DataFrame({**cols, **{k: v for k, v in feats.items() if "__" in k}})
        pred = self.bundle.predict(frame.astype("float64"))
        return {"duration_seconds": float(pred["duration"][0]), "fare_usd": float(pred["fare"][0])}
