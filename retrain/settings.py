"""Settings of the retrain job, from the environment.

The chart passes ``TAXI_HELM_RELEASE``, ``TAXI_HELM_CHART``, ``TAXI_LEASE_NAME`` and
``TAXI_ENTRY_SERVICE``; everything else is ``TAXI_RETRAIN_*``. ``common/settings.py`` leaves
those prefixes to this object, so an unknown ``TAXI_RETRAIN_*`` variable is rejected here.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common import paths

CHART_VARS = {"TAXI_HELM_RELEASE": "helm_release", "TAXI_HELM_CHART": "helm_chart",
              "TAXI_LEASE_NAME": "lease_name", "TAXI_ENTRY_SERVICE": "entry_service"}
OWN_PREFIXES = ("TAXI_RETRAIN_", "TAXI_HELM_", "TAXI_LEASE_", "TAXI_ENTRY_")


def _alias(name: str) -> AliasChoices:
    return AliasChoices(name)


class RetrainSettings(BaseSettings):
    """What the job reads, when it retrains, how it gates and how it rolls out."""

    # hide_input_in_errors: a validation error must not print REDIS_URL (it may hold a password)
    model_config = SettingsConfigDict(env_prefix="TAXI_RETRAIN_", extra="forbid", frozen=True,
                                      hide_input_in_errors=True)

    # -- from the chart ---------------------------------------------------------------------
    helm_release: str = Field(default="taxi-serve", validation_alias=_alias("TAXI_HELM_RELEASE"))
    helm_chart: str = Field(default=str(paths.ROOT / "helm" / "taxi-serve"),
                            validation_alias=_alias("TAXI_HELM_CHART"),
                            description="chart to upgrade with (path or name-version)")
    lease_name: str = Field(default="taxi-serve-retrain",
                            validation_alias=_alias("TAXI_LEASE_NAME"))
    entry_service: str = Field(default="taxi-serve", validation_alias=_alias("TAXI_ENTRY_SERVICE"))

    # -- where things are -------------------------------------------------------------------
    redis_url: str | None = Field(default=None,
                                  validation_alias=AliasChoices("REDIS_URL",
                                                                "TAXI_RETRAIN_REDIS_URL"))
    data: list[Path] = Field(default=[paths.SAMPLE_DIR],
                             description="labelled trip files or folders (JSON list)")
    zones: Path = paths.ZONES_CSV
    feature_repo: Path = paths.FEATURE_REPO
    artifacts_dir: Path = paths.ARTIFACTS
    namespace: str = Field(default="", description="Kubernetes namespace; empty = in-cluster "
                           "namespace file, else no Kubernetes (Lease and Events off)")
    kubeconfig: Path | None = Field(default=None, description="unset = in-cluster config")
    helm_bin: str = "helm"
    lease_duration_s: int = Field(default=120, ge=5, description="a dead run's Lease expires "
                                  "after this; the holder renews it every third of it")
    prometheus_url: str = "http://prometheus:9090"

    # -- decide -----------------------------------------------------------------------------
    mae_ratio: float = Field(default=1.25, gt=1.0,
                             description="retrain when rolling feedback MAE > ratio x offline")
    min_feedback: int = Field(default=200, ge=1, description="feedback samples before MAE counts")
    accuracy_window_s: int = Field(default=3600, ge=60)
    max_age_days: float = Field(default=30.0, gt=0, description="retrain an older champion")
    retrain_on_drift: bool = True

    # -- retrain and gate -------------------------------------------------------------------
    window_months: int = Field(default=3, ge=2, le=24,
                               description="trailing months of labelled data (the newest is "
                                           "the evaluation month)")
    sample_fraction: float = Field(default=1.0, gt=0, le=1.0,
                                   description="row subsample of each month (speed)")
    gate_margin: float = Field(default=0.02, ge=0, lt=1,
                               description="candidate must beat the champion's fare or "
                                           "duration MAE by this fraction")
    gate_tolerance: float = Field(default=0.02, ge=0, lt=1,
                                  description="and be no worse than this fraction on the other")
    compile: bool = Field(default=True, description="build step compiles the candidate's trees "
                                                    "for serving (training/compile.py)")

    # -- rollout ----------------------------------------------------------------------------
    rollout: str = Field(default="helm", pattern="^(helm|none)$",
                         description="none: stop after build (no cluster)")
    canary_steps: list[int] = Field(default=[10, 50, 100])
    pause_s: float = Field(default=300.0, ge=0, description="pause before each analysis")
    helm_timeout: str = "10m"
    preview_url: str = Field(default="", description="blue-green smoke test base URL; empty = "
                             "http://<release>-preview.<namespace>:3000")
    smoke_tolerance: float = Field(default=0.05, ge=0, description="allowed |served - offline|")
    rollback_window_s: float = Field(default=3600.0, ge=0,
                                     description="keep the old color this long before scaling "
                                                 "it down (0 = leave it up)")

    # -- canary analysis --------------------------------------------------------------------
    analysis_window: str = Field(default="5m", pattern=r"^[0-9]+[smh]$")
    max_error_rate_delta: float = Field(default=0.01, ge=0,
                                        description="canary 5xx rate may exceed stable's by this")
    max_p99_ratio: float = Field(default=1.5, gt=0, description="canary p99 / stable p99")
    p99_floor_s: float = Field(default=0.05, ge=0,
                               description="p99 below this always passes (noise floor)")
    max_mae_ratio: float = Field(default=1.1, gt=0, description="canary MAE / stable MAE")
    min_requests: int = Field(default=50, ge=1, description="canary requests an analysis needs")

    @field_validator("canary_steps")
    @classmethod
    def _steps(cls, steps: list[int]) -> list[int]:
        if not steps or steps != sorted(steps) or not all(0 < s <= 100 for s in steps) \
                or steps[-1] != 100:
            raise ValueError("canary_steps must rise within 1-100 and end at 100")
        return steps

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_env(cls, data: dict) -> dict:
        # pydantic-settings ignores unknown prefixed variables; a typo must fail the job.
        known = {f"TAXI_RETRAIN_{n.upper()}" for n in cls.model_fields} | set(CHART_VARS)
        unknown = sorted(k for k in os.environ if k.startswith(OWN_PREFIXES) and k not in known)
        if unknown:
            raise ValueError(f"unknown retrain settings in the environment: {', '.join(unknown)}")
        return data

    def k8s_namespace(self) -> str | None:
        """The namespace to act in, or None when the job runs without Kubernetes."""
        if self.namespace:
            return self.namespace
        sa = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
        return sa.read_text().strip() if sa.exists() else None
