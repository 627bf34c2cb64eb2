"""The public request/response contract (HTTP JSON; the gRPC messages mirror it)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
)

ZoneId = Annotated[StrictInt, Field(ge=1, le=263, description="TLC taxi zone LocationID")]
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
# A date, a time (to the minute at least) and an optional offset, and nothing else: no NUL,
# no trailing newline, no date without a time (fromisoformat alone accepts all three).
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?"
                       r"(Z|[+-]\d{2}:?\d{2})?", re.ASCII)
NY = ZoneInfo("America/New_York")


def _request_id(value: str) -> str:
    # fullmatch, not match with `$`: `$` also matches before a trailing newline
    if not _REQUEST_ID.fullmatch(value):
        raise ValueError("must be 1-128 characters of letters, digits and . _ : -")
    return value


RequestId = Annotated[StrictStr, AfterValidator(_request_id)]


class TripRequest(BaseModel):
    """One trip the ride app asks about."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "pickup_zone_id": 74, "dropoff_zone_id": 236, "pickup_datetime": "2023-02-07T08:30:00",
        "passenger_count": 1, "trip_distance_miles": 2.4}]})

    pickup_zone_id: ZoneId
    dropoff_zone_id: ZoneId
    pickup_datetime: str = Field(
        description="ISO 8601; a naive time is New York local time",
        examples=["2023-02-07T08:30:00", "2023-02-07T13:30:00Z"])
    passenger_count: Annotated[StrictInt, Field(ge=1, le=8)] | None = None
    trip_distance_miles: Annotated[StrictFloat | StrictInt,
                                   Field(gt=0, le=100, allow_inf_nan=False)] | None = None
    request_id: RequestId | None = Field(default=None, description="generated when absent",
                                         examples=["ride-42"])

    @field_validator("pickup_datetime")
    @classmethod
    def _iso8601(cls, value: str) -> str:
        return check_pickup_datetime(value)


def check_pickup_datetime(value: str) -> str:
    """An ISO 8601 date and time, optionally with an offset; a naive time must exist in New
    York (docs/api.md: the spring-forward gap is refused, a fall-back time is accepted)."""
    if not _DATETIME.fullmatch(value):
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError("must include a time of day, e.g. 2023-02-07T08:30:00")
        raise ValueError("must be an ISO 8601 date-time such as 2023-02-07T08:30:00")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO 8601 date-time such as 2023-02-07T08:30:00") from None
    if not 2000 <= parsed.year <= 2100:
        raise ValueError("year must be between 2000 and 2100")
    if parsed.tzinfo is None:
        local = parsed.replace(tzinfo=NY)
        if local.astimezone(UTC).astimezone(NY).replace(tzinfo=None) != parsed:
            raise ValueError("does not exist in New York: clocks skip this hour when daylight "
                             "time starts; send a UTC offset or a time that exists")
    return value


class Prediction(BaseModel):
    """The answer for one trip."""

    request_id: str
    duration_seconds: float
    fare_usd: float
    model_version: str
    track: str
    degraded: list[str] = Field(default_factory=list,
                                description="empty when all is well, e.g. features_unavailable")


class BatchRequest(BaseModel):
    """Up to the configured limit (default 1000) of trips, answered in order."""

    model_config = ConfigDict(extra="forbid")
    trips: list[TripRequest] = Field(min_length=1)


class BatchResponse(BaseModel):
    predictions: list[Prediction]


class ErrorDetail(BaseModel):
    field: str
    rule: str


class ErrorResponse(BaseModel):
    """Every 4xx answer: a message naming the fields and the rules they broke."""

    error: str
    detail: list[ErrorDetail] = Field(default_factory=list)
