"""service.feast_wire writes the same keys and fields, and reads the same values, as Feast's own
functions, and the serving path does not import Feast (it is what made workers slow to start)."""

from __future__ import annotations

import math
import random
import subprocess
import sys

import pytest
from feast.infra.online_stores.helpers import _mmh3, _redis_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value

from common.paths import ROOT
from service import feast_wire
from service.online_features import PROJECT, VIEWS

pytestmark = pytest.mark.unit


def feast_key(join_keys, values) -> bytes:
    return _redis_key(PROJECT, EntityKey(join_keys=list(join_keys),
                                         entity_values=[Value(int64_val=v) for v in values]))


@pytest.mark.parametrize("proj", sorted(VIEWS))
def test_keys_match_feast_for_every_view(proj):
    rng = random.Random(proj)
    join_keys = VIEWS[proj][1]
    samples = [tuple(rng.randrange(-2**63, 2**63) for _ in join_keys) for _ in range(200)]
    samples += [tuple(v for _ in join_keys) for v in (0, 1, 263, 263_263, -1)]
    for values in samples:
        assert feast_wire.redis_key(PROJECT, join_keys, values) == feast_key(join_keys, values)


def test_multi_key_entities_are_sorted_by_name_as_feast_does():
    ours = feast_wire.redis_key(PROJECT, ("zone_id", "hour_of_week"), (74, 10))
    assert ours == feast_key(("zone_id", "hour_of_week"), (74, 10))
    assert ours == feast_wire.redis_key(PROJECT, ("hour_of_week", "zone_id"), (10, 74))
    assert ours != feast_wire.redis_key(PROJECT, ("zone_id", "hour_of_week"), (10, 74))


def test_fields_match_feast():
    for name in ("zone_hour_traffic:zh_trips", "route_stats:r_fare_median", "z:é", "v:"):
        view, _, feature = name.partition(":")
        assert feast_wire.field(view, feature) == _mmh3(name)


@pytest.mark.parametrize("kwargs", [
    {"double_val": 1.5}, {"double_val": -0.0}, {"double_val": 1e308}, {"double_val": 0.0},
    {"float_val": 2.5}, {"int64_val": 0}, {"int64_val": -3}, {"int64_val": 2**63 - 1},
    {"int64_val": -2**63}, {"int32_val": -7}, {"int32_val": 2**31 - 1}, {"bool_val": True},
    {"unix_timestamp_val": 1_675_000_000},
])
def test_values_decode_as_feast_reads_them(kwargs):
    (kind, expected), = kwargs.items()
    raw = Value(**kwargs).SerializeToString()
    assert feast_wire.value(raw) == float(getattr(Value.FromString(raw), kind)) == float(expected)


def test_absent_unset_null_and_nan_values_are_nan():
    assert math.isnan(feast_wire.value(None))
    assert math.isnan(feast_wire.value(b""))
    assert math.isnan(feast_wire.value(Value().SerializeToString()))
    assert math.isnan(feast_wire.value(Value(null_val=0).SerializeToString()))
    assert math.isnan(feast_wire.value(Value(double_val=math.nan).SerializeToString()))


def test_non_numbers_and_garbage_are_refused_with_the_field():
    with pytest.raises(ValueError, match="field 2"):
        feast_wire.value(Value(string_val="x").SerializeToString())
    with pytest.raises(ValueError, match="varint"):
        feast_wire.value(b"\x20\xff\xff")


def test_the_serving_path_does_not_import_feast_lightgbm_or_pandas():
    """With compiled trees, a worker needs none of them; they cost most of its start (issue
    15). (tests/service/test_worker_crash.py checks a live worker's memory maps too, after
    it loaded its model.)"""
    code = ("import sys, service.http_app, service.grpc_server, service.predictor, "
            "service.predlog, service.feedback, service.accuracy, training.compile; "
            "print(sorted(m for m in ('feast', 'lightgbm', 'sklearn', 'scipy', 'dask', "
            "'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, env={"BENTOML_DO_NOT_TRACK": "true", "PATH": "/usr/bin:/bin"},
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]", out.stdout
