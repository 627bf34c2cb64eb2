"""Bytes that are not a valid request message, sent by a real gRPC client over loopback."""

from __future__ import annotations

import random

import grpc
import httpx
import pytest
from google.protobuf.message import DecodeError
from prometheus_client.parser import text_string_to_metric_families

from service.grpc_gen import taxi_pb2

pytestmark = pytest.mark.service

METHODS = {"Predict": taxi_pb2.PredictRequest, "PredictBatch": taxi_pb2.PredictBatchRequest,
           "Feedback": taxi_pb2.FeedbackRequest}


def malformed_messages(message_cls, n: int, seed: int) -> list[bytes]:
    """Byte strings protobuf refuses to parse as ``message_cls``: truncated varints and
    lengths, invalid UTF-8 in string fields, end-group tags, then random bytes."""
    fixed = [b"\xff\xff\xff", b"\x0a\x05ab", b"\x1a\x02\xff\xfe", b"\x0c", b"\x32\x03\xc3",
             b"\x08\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01"]
    rng, found = random.Random(seed), []
    for data in fixed + [rng.randbytes(rng.randint(1, 64)) for _ in range(20 * n)]:
        try:
            message_cls.FromString(data)
        except DecodeError:
            found.append(data)
        if len(found) == n:
            break
    return found


def invalid_argument_count(served, endpoint: str) -> float:
    text = httpx.get(f"{served.http}/metrics", timeout=10).text
    return sum(s.value for fam in text_string_to_metric_families(text) for s in fam.samples
               if s.name == "taxi_requests_total" and s.labels.get("protocol") == "grpc"
               and s.labels.get("endpoint") == endpoint
               and s.labels.get("status") == "invalid_argument")


@pytest.mark.parametrize("method", sorted(METHODS))
def test_malformed_messages_are_invalid_argument_counted_and_not_logged(served, method):
    messages = malformed_messages(METHODS[method], 40, seed=len(method))
    assert len(messages) == 40
    before_log, before = len(served.log()), invalid_argument_count(served, method)
    with grpc.insecure_channel(served.grpc) as channel:
        # identity serializers: the bytes go on the wire exactly as written
        call = channel.unary_unary(f"/taxi.v1.TripPredictor/{method}",
                                   request_serializer=None, response_deserializer=None)
        for data in messages:
            with pytest.raises(grpc.RpcError) as err:
                call(data, timeout=10)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (data, err.value)
            assert "not a valid" in err.value.details()
    assert invalid_argument_count(served, method) - before == len(messages)
    new_log = served.log()[before_log:]
    assert "Traceback" not in new_log and "DecodeError" not in new_log, new_log[-2000:]
