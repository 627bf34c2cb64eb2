"""Training's scale settings (prefix ``TAXI_TRAIN_``): how much memory the pipeline may use and
where a Dask cluster is. Peak memory depends on these, not on the size of the data."""

from __future__ import annotations

import os

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class TrainScaleSettings(BaseSettings):
    """Unknown ``TAXI_TRAIN_*`` variables are errors (a typo must not pass silently)."""

    model_config = SettingsConfigDict(env_prefix="TAXI_TRAIN_", extra="forbid", frozen=True)

    # The eight shared months' training window (2022-01 on) holds 227k trips, so it is not
    # sampled; docs/training-scale.md has the peak memory measured per budget.
    max_rows: int = Field(default=1_000_000, ge=1_000,
                          description="training trips kept, newest first")
    eval_rows: int = Field(default=200_000, ge=1_000,
                           description="evaluation trips: a seeded uniform sample of the month")
    chunk_rows: int = Field(default=250_000, ge=1_000,
                            description="rows read, validated and joined at a time")
    duckdb_memory: str = Field(default="512MB", pattern=r"^\d+(\.\d+)?\s*[KMG]i?B$",
                               description="DuckDB's memory limit for the feature snapshots "
                                           "(it spills to disk beyond it)")
    dask_address: str | None = Field(default=None, description="Dask scheduler, e.g. "
                                     "tcp://10.0.0.5:8786: LightGBM trains there (lightgbm.dask)")

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_env(cls, data: dict) -> dict:
        # pydantic-settings ignores unknown prefixed variables; a typo must not pass silently
        known = {f"TAXI_TRAIN_{name.upper()}" for name in cls.model_fields}
        unknown = sorted(k for k in os.environ if k.startswith("TAXI_TRAIN_") and k not in known)
        if unknown:
            raise ValueError(f"unknown training settings in the environment: {', '.join(unknown)}")
        return data
