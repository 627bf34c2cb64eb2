"""Typed settings of the drift monitor: prefix ``TAXI_DRIFT_``; ``REDIS_URL`` and ``BENTOML_HOME``
unprefixed, as the chart passes them to every component."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PREFIX = "TAXI_DRIFT_"


class DriftSettings(BaseSettings):
    """Settings of ``python -m drift_monitor``. Unknown ``TAXI_DRIFT_*`` variables are errors.

    List settings are JSON in the environment, e.g. ``TAXI_DRIFT_IGNORE_FEATURES='["hour"]'``.
    """

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="forbid", frozen=True,
                                      populate_by_name=True)

    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "TAXI_DRIFT_REDIS_URL"),
        description="Redis holding taxi:predlog; unset = `run` starts a private local server")
    bentoml_home: Path = Field(
        default_factory=lambda: Path("~/bentoml").expanduser(),
        validation_alias=AliasChoices("BENTOML_HOME", "TAXI_DRIFT_BENTOML_HOME"),
        description="BentoML store holding models/<name>/<version>/reference.parquet")
    model_name: str = Field(default="taxi_trip", min_length=1,
                            description="model name in the BentoML store")
    reference_path: str | None = Field(
        default=None, description="reference parquet for every version instead of the store's; "
                                  "'{version}' in it is replaced by the model version")
    host: str = Field(default="0.0.0.0", description="address of the /metrics and /healthz server")
    port: int = Field(default=9102, ge=1, le=65535, description="/metrics and /healthz port")
    window_size: int = Field(default=1000, ge=10, le=1_000_000,
                             description="latest predictions per model version in one window")
    min_window: int = Field(default=200, ge=10,
                            description="fewer entries than this = insufficient_data, no verdict")
    scan_entries: int = Field(default=20_000, ge=10, le=10_000_000,
                              description="newest taxi:predlog entries read per evaluation; "
                                          "a version's window comes from these")
    window_sampling: Literal["newest", "uniform"] = Field(
        default="newest", description="newest: the last window_size entries (a sliding window); "
        "uniform: a random window_size of the scanned entries, so the window spans as much time "
        "as scan_entries does (see docs/monitoring.md on time-local windows)")
    interval_s: float = Field(default=60.0, gt=0, le=86_400,
                              description="seconds between evaluations")
    p_value: float = Field(default=0.05, gt=0, lt=1,
                           description="significance level before multiple-testing correction")
    correction: Literal["bonferroni", "fdr"] = Field(
        default="bonferroni", description="alibi-detect's multiple-testing correction")
    extra_categorical: list[str] = Field(
        default_factory=lambda: ["hour", "weekday"],
        description="chi-squared features besides the model's own categorical list")
    feature_scope: Literal["request", "all"] = Field(
        default="request", description="request: test what the ride app sent plus static zone "
        "geometry (the model hash's store_features are left out); all: every logged column. "
        "The online store holds one snapshot while the reference holds point-in-time values, "
        "so 'all' flags that difference on every window (docs/monitoring.md)")
    ignore_features: list[str] = Field(default_factory=list,
                                       description="features left out of the feature test")
    min_category_count: int = Field(
        default=25, ge=0, description="categories rarer than this in the reference are pooled "
                                      "into one 'other' category (keeps chi-squared valid)")
    redis_timeout_s: float = Field(default=2.0, gt=0, le=60, description="Redis socket timeout")

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_env(cls, data: dict) -> dict:
        # pydantic-settings ignores unknown prefixed variables; a typo must not pass silently.
        known = {f"{PREFIX}{name.upper()}" for name in cls.model_fields}
        unknown = sorted(k for k in os.environ if k.startswith(PREFIX) and k not in known)
        if unknown:
            raise ValueError(f"unknown drift monitor settings in the environment: "
                             f"{', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return data

    @model_validator(mode="after")
    def _check_sizes(self) -> DriftSettings:
        if self.min_window > self.window_size:
            raise ValueError(f"min_window ({self.min_window}) must not exceed "
                             f"window_size ({self.window_size})")
        if self.scan_entries < self.window_size:
            raise ValueError(f"scan_entries ({self.scan_entries}) must be at least "
                             f"window_size ({self.window_size})")
        return self

    def reference_for(self, version: str) -> Path:
        """Path of the reference parquet of model ``version``."""
        if self.reference_path:
            return Path(self.reference_path.replace("{version}", version)).expanduser()
        return self.bentoml_home / "models" / self.model_name / version / "reference.parquet"
