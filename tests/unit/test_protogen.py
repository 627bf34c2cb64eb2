"""The committed gRPC code is what ``make proto`` generates from proto/taxi/v1/taxi.proto."""

from __future__ import annotations

import pytest

from service import protogen
from service.grpc_gen import taxi_pb2

pytestmark = pytest.mark.unit


def test_generated_code_matches_the_proto_file(tmp_path):
    written = protogen.generate(tmp_path)
    assert written, "protoc wrote nothing"
    for path in sorted(tmp_path.iterdir()):
        committed = protogen.OUT / path.name
        assert committed.exists(), f"{path.name} is generated but not committed: run make proto"
        assert path.read_text() == committed.read_text(), (
            f"service/grpc_gen/{path.name} is stale against {protogen.PROTO.name}: run make proto")


def test_every_served_rpc_is_in_the_proto_file():
    # The server registers these; a proto without one of them breaks the service on regeneration.
    served = {"Predict", "PredictBatch", "Feedback"}
    text = protogen.PROTO.read_text()
    assert served <= set(taxi_pb2.DESCRIPTOR.services_by_name["TripPredictor"].methods_by_name)
    for name in served:
        assert f"rpc {name}(" in text
