"""The Feast feature store: open it with the right environment, apply, materialize, read."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pandas as pd
from feast import FeatureStore

from common.settings import feast_connection_string

FEATURE_SERVICES = ("duration_v1", "fare_v1")
UNION_SERVICE = "trip_v1"  # both models' features in one read


def data_dir(repo: Path) -> Path:
    """Where the offline feature tables and the registry live."""
    return Path(repo).resolve() / "data"


def open_store(repo: Path, redis_url: str) -> FeatureStore:
    """A FeatureStore for ``repo`` whose online store is the Redis at ``redis_url``."""
    os.environ["FEAST_TAXI_REDIS"] = feast_connection_string(redis_url)
    os.environ["FEAST_TAXI_REGISTRY"] = str(data_dir(repo) / "registry.db")
    return FeatureStore(repo_path=str(Path(repo).resolve()))


def apply(store: FeatureStore) -> list[str]:
    """Register every entity, view and service of feature_repo/definitions.py."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "taxi_feature_definitions", Path(store.repo_path) / "definitions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from feast import Entity, FeatureService, FeatureView

    def is_definition(obj) -> bool:
        if isinstance(obj, (Entity, FeatureService)):
            return True
        # projections made with with_name()/with_join_key_map() live inside services only
        return (isinstance(obj, FeatureView) and not obj.projection.name_alias
                and not obj.projection.join_key_map)

    objects = [obj for obj in vars(module).values() if is_definition(obj)]
    store.apply(objects)
    return sorted({o.name for o in objects})


def materialize(store: FeatureStore, end: datetime | None = None) -> None:
    """Load the newest feature row of every entity into Redis.

    The window starts at the epoch so that a historical sample still materializes: the
    latest snapshot per key is what the service reads.
    """
    end = end or datetime.now().astimezone()
    store.materialize(start_date=datetime(1970, 1, 2).astimezone(), end_date=end)


def historical_features(store: FeatureStore, entity_df: pd.DataFrame,
                        service: str) -> pd.DataFrame:
    """Point-in-time join of a feature service onto ``entity_df`` (needs event_timestamp)."""
    job = store.get_historical_features(
        entity_df=entity_df, features=store.get_feature_service(service),
        full_feature_names=True)
    return job.to_df()
