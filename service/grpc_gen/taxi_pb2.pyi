from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PredictRequest(_message.Message):
    __slots__ = ("pickup_zone_id", "dropoff_zone_id", "pickup_datetime", "passenger_count", "trip_distance_miles", "request_id")
    PICKUP_ZONE_ID_FIELD_NUMBER: _ClassVar[int]
    DROPOFF_ZONE_ID_FIELD_NUMBER: _ClassVar[int]
    PICKUP_DATETIME_FIELD_NUMBER: _ClassVar[int]
    PASSENGER_COUNT_FIELD_NUMBER: _ClassVar[int]
    TRIP_DISTANCE_MILES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    pickup_zone_id: int
    dropoff_zone_id: int
    pickup_datetime: str
    passenger_count: int
    trip_distance_miles: float
    request_id: str
    def __init__(self, pickup_zone_id: _Optional[int] = ..., dropoff_zone_id: _Optional[int] = ..., pickup_datetime: _Optional[str] = ..., passenger_count: _Optional[int] = ..., trip_distance_miles: _Optional[float] = ..., request_id: _Optional[str] = ...) -> None: ...

class Prediction(_message.Message):
    __slots__ = ("request_id", "duration_seconds", "fare_usd", "model_version", "track", "degraded")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FARE_USD_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TRACK_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    duration_seconds: float
    fare_usd: float
    model_version: str
    track: str
    degraded: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, request_id: _Optional[str] = ..., duration_seconds: _Optional[float] = ..., fare_usd: _Optional[float] = ..., model_version: _Optional[str] = ..., track: _Optional[str] = ..., degraded: _Optional[_Iterable[str]] = ...) -> None: ...

class PredictBatchRequest(_message.Message):
    __slots__ = ("trips",)
    TRIPS_FIELD_NUMBER: _ClassVar[int]
    trips: _containers.RepeatedCompositeFieldContainer[PredictRequest]
    def __init__(self, trips: _Optional[_Iterable[_Union[PredictRequest, _Mapping]]] = ...) -> None: ...

class PredictBatchResponse(_message.Message):
    __slots__ = ("predictions",)
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    predictions: _containers.RepeatedCompositeFieldContainer[Prediction]
    def __init__(self, predictions: _Optional[_Iterable[_Union[Prediction, _Mapping]]] = ...) -> None: ...

class FeedbackRequest(_message.Message):
    __slots__ = ("request_id", "actual_duration_seconds", "actual_fare_usd")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ACTUAL_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ACTUAL_FARE_USD_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    actual_duration_seconds: float
    actual_fare_usd: float
    def __init__(self, request_id: _Optional[str] = ..., actual_duration_seconds: _Optional[float] = ..., actual_fare_usd: _Optional[float] = ...) -> None: ...

class FeedbackReply(_message.Message):
    __slots__ = ("request_id", "status", "model_version", "track")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TRACK_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    status: str
    model_version: str
    track: str
    def __init__(self, request_id: _Optional[str] = ..., status: _Optional[str] = ..., model_version: _Optional[str] = ..., track: _Optional[str] = ...) -> None: ...
