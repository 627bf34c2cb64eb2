"""Typed settings read from the environment (prefix ``TAXI_``; ``REDIS_URL`` unprefixed)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import AliasChoices, Field, IPvAnyAddress, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common import paths

# Prefixes owned by other components' own settings objects (the drift monitor's, the retrain
# job's); the chart passes them in the same pods, so they are theirs to validate, not ours.
OTHER_COMPONENTS = ("TAXI_DRIFT_", "TAXI_RETRAIN_", "TAXI_HELM_", "TAXI_LEASE_", "TAXI_ENTRY_",
                    "TAXI_TRAIN_")


class Settings(BaseSettings):
    """Settings shared by every taxi-serve process. Unknown ``TAXI_*`` variables are errors."""

    model_config = SettingsConfigDict(env_prefix="TAXI_", extra="forbid", frozen=True)

    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "TAXI_REDIS_URL"),
        description="Redis for Feast's online store and the prediction log; unset = local server")
    feature_repo: Path = Field(default=paths.FEATURE_REPO, description="Feast repository")
    artifacts_dir: Path = Field(default=paths.ARTIFACTS, description="datasets, reports")
    model_tag: str = Field(default="taxi_trip:champion",
                           description="BentoML model tag to serve; 'champion' = current champion")
    track: str = Field(default="main", description="rollout track label: main/stable/canary/...")
    host: IPvAnyAddress = Field(
        default="127.0.0.1", description="address HTTP and gRPC listen on: 127.0.0.1 (this "
        "machine only) unless set; images set 0.0.0.0 (every interface) for the pod network")
    model_wait_s: float = Field(default=0.0, ge=0, le=86_400,
                                description="seconds `python -m service` waits for its model to "
                                "appear in the store (a fresh install's bootstrap Job) first")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="level of the service's own loggers (taxi.*)")
    http_port: int = Field(default=3000, ge=1, le=65535)
    grpc_port: int = Field(default=50051, ge=0, le=65535, description="0 disables gRPC")
    header_timeout_s: float = Field(
        default=5.0, gt=0, le=300, description="a request's headers must arrive within this "
        "after the connection opens (or its first byte): else 408 and the connection closes")
    body_timeout_s: float = Field(
        default=8.0, gt=0, le=300, description="a request's body must arrive within this after "
        "its headers (under BentoML's 10 s request timeout): else 408, connection closed")
    max_batch: int = Field(default=1000, ge=1, le=100_000, description="max trips per batch")
    workers: int = Field(default=1, ge=1, le=64, description="BentoML HTTP worker processes")
    process_check_s: float = Field(
        default=1.0, ge=0.1, le=60, description="how often the process manager looks for "
        "crashed workers to replace (BentoML's own: every 10 s); service/serve_cli.py")
    drain_file: Path | None = Field(
        default=None, description="when this file appears (a pod's preStop hook creates it), "
        "/readyz answers 503 and HTTP connections close after each response; "
        "service/drain.py")
    compiled_model: bool = Field(default=True, description="serve the model's compiled trees "
                                 "when `python -m training compile` made them")
    batch_threads: int = Field(default=2, ge=1, le=64,
                               description="threads for the trees of a large batch")
    redis_timeout_ms: float = Field(default=50.0, gt=0, le=5000,
                                    description="per-request Redis budget before falling back")
    predlog_enabled: bool = Field(default=True, description="log predictions to Redis")
    predlog_buffer: int = Field(default=10_000, ge=1, le=1_000_000,
                                description="trips held in memory for the log; more are dropped")
    predlog_maxlen: int = Field(default=200_000, ge=1000,
                                description="approximate length cap of the taxi:predlog stream")
    feedback_ttl_s: int = Field(default=21_600, ge=60,
                                description="how long a prediction waits for its feedback")
    accuracy_windows: str = Field(default="15m,1h,24h",
                                  description="rolling-MAE windows, e.g. 15m,1h,24h")
    accuracy_refresh_s: float = Field(default=10.0, gt=0, le=3600,
                                      description="seconds between rolling-MAE refreshes")

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_env(cls, data: dict) -> dict:
        # pydantic-settings ignores unknown prefixed variables; a typo must not pass silently.
        known = {f"TAXI_{name.upper()}" for name in cls.model_fields}
        unknown = sorted(k for k in os.environ if k.startswith("TAXI_") and k not in known
                         and not k.startswith(OTHER_COMPONENTS))
        if unknown:
            raise ValueError(f"unknown settings in the environment: {', '.join(unknown)}")
        return data


def feast_connection_string(redis_url: str) -> str:
    """Translate ``redis://host:port/db`` into Feast's ``host:port,db=N`` connection string."""
    url = urlparse(redis_url)
    if url.scheme not in ("redis", "rediss"):
        raise ValueError(f"REDIS_URL must use redis:// or rediss://, got {redis_url!r}")
    parts = [f"{url.hostname or 'localhost'}:{url.port or 6379}"]
    db = (url.path or "/0").lstrip("/") or "0"
    parts.append(f"db={db}")
    if url.password:
        parts.append(f"password={url.password}")
    if url.scheme == "rediss":
        parts.append("ssl=true")
    return ",".join(parts)
