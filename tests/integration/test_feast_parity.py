"""The request path reads Redis with its own client and its own reading of Feast's key and
value encoding (service/feast_wire.py) instead of calling Feast. This compares those reads with
Feast's own ``get_online_features`` for every materialized entity (issue 15, finding 9): every
zone x hour-of-week, every zone and every route, value by value. A Feast upgrade that changed
the key or value encoding fails here directly."""

from __future__ import annotations

import asyncio
import math

import pytest
from feast.infra.online_stores import helpers
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value

from service import feast_wire
from service.online_features import VIEWS, OnlineFeatures
from training import store
from training.features import route_id

pytestmark = pytest.mark.integration
CHUNK = 5000


def feature_names(fs) -> dict[str, list[str]]:
    return {view: [f.name for f in fs.get_feature_view(view).features]
            for view in {v for v, _ in VIEWS.values()}}


def entities(prepared) -> dict[str, list[tuple[int, ...]]]:
    """The entity keys of every view as materialized: the keys of its feature table."""
    out = {}
    for view, keys in {v: k for v, k in VIEWS.values()}.items():
        table = prepared.tables[view]
        out[view] = sorted({tuple(int(v) for v in row)
                            for row in table[list(keys)].itertuples(index=False)})
    return out


def feast_values(fs, view: str, keys: tuple[str, ...], rows: list[tuple[int, ...]],
                 names: list[str]) -> list[list[float]]:
    out: list[list[float]] = []
    for i in range(0, len(rows), CHUNK):
        part = rows[i:i + CHUNK]
        got = fs.get_online_features(
            features=[f"{view}:{n}" for n in names], full_feature_names=True,
            entity_rows=[dict(zip(keys, row)) for row in part]).to_dict()
        cols = [got[f"{view}__{n}"] for n in names]
        out += [[math.nan if c[j] is None else float(c[j]) for c in cols]
                for j in range(len(part))]
    return out


def service_values(redis_url: str, names: dict[str, list[str]],
                   trips: list[tuple[int, int, int]]) -> tuple[list[str], list[list[float]]]:
    """The request path's own reads (no fallback: a failed read fails the test)."""
    columns = [f"{proj}__{n}" for proj, (view, _) in VIEWS.items() for n in names[view]]

    async def go():
        features = OnlineFeatures(redis_url, columns, {}, timeout_s=30.0)
        rows = []
        try:
            for i in range(0, len(trips), CHUNK):
                matrix, online = await features.fetch(trips[i:i + CHUNK])
                assert online, "the request path fell back: Redis did not answer"
                rows += matrix.tolist()
        finally:
            await features.close()
        return features.columns, rows

    return asyncio.run(go())


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def mismatches(fs, redis_url: str, prepared) -> tuple[dict, dict, list]:
    """Entities compared per view, how many of them Feast has values for, and every
    (view, entity, feature, feast, service) that differs."""
    names, ents = feature_names(fs), entities(prepared)
    zones = sorted({z for (z,) in ents["zone_stats"]} | {z for z, _ in ents["zone_hour_traffic"]})
    # one trip per (zone, hour of week) covers pickup_traffic, both zone projections and the
    # zone's own loop route; one trip per route covers every route
    grid = [(z, z, h) for z in zones for h in range(168)]
    routes = [(r // 1000, r % 1000, 0) for (r,) in ents["route_stats"]]
    assert all(route_id(pu, do) == r for (pu, do, _), (r,) in zip(routes, ents["route_stats"]))
    columns, got = service_values(redis_url, names, grid + routes)
    col = {c: i for i, c in enumerate(columns)}

    checks = {  # view -> (projection, entities, rows of `got` that hold them)
        "zone_hour_traffic": ("pickup_traffic", [(z, h) for z, _, h in grid], range(len(grid))),
        "zone_stats": ("pickup_zone", [(z,) for z, _, h in grid[::168]],
                       range(0, len(grid), 168)),
        "route_stats": ("route_stats", list(ents["route_stats"]),
                        range(len(grid), len(grid) + len(routes))),
    }
    counted, present, bad = {}, {}, []
    for view, (proj, rows, where) in checks.items():
        keys = VIEWS[proj][1]
        feast = feast_values(fs, view, keys, rows, names[view])
        counted[view] = len(rows)
        present[view] = sum(1 for row in feast if not all(map(math.isnan, row)))
        for entity, theirs, i in zip(rows, feast, where):
            ours = [got[i][col[f"{proj}__{n}"]] for n in names[view]]
            bad += [(view, entity, n, a, b) for n, a, b in zip(names[view], theirs, ours)
                    if not same(a, b)]
    # the dropoff projection reads the same zone_stats hashes as the pickup one
    for i in range(0, len(grid), 168):
        for n in names["zone_stats"]:
            a, b = got[i][col[f"pickup_zone__{n}"]], got[i][col[f"dropoff_zone__{n}"]]
            if not same(a, b):
                bad.append(("zone_stats/dropoff", grid[i][:1], n, a, b))
    return counted, present, bad


@pytest.fixture(scope="module")
def fs(prepared, feature_repo, redis_url):
    return store.open_store(feature_repo, redis_url)


def test_request_path_reads_what_feast_reads_for_every_entity(fs, prepared, redis_url):
    counted, present, bad = mismatches(fs, redis_url, prepared)
    ents = entities(prepared)
    assert counted["route_stats"] == len(ents["route_stats"]) > 1000
    assert counted["zone_hour_traffic"] >= len(ents["zone_hour_traffic"]) > 1000
    assert counted["zone_stats"] >= len(ents["zone_stats"]) > 100
    assert not bad, f"{len(bad)} values differ, e.g. {bad[:5]}"
    # not a vacuous comparison: every materialized entity has values (Feast reads them)
    for view, keys in ents.items():
        assert present[view] == len(keys), (view, present[view], len(keys))


def test_a_wrong_key_encoding_is_caught(fs, prepared, redis_url, monkeypatch):
    """A deliberately wrong key (int32 entity values where Feast writes int64) must fail."""
    def int32_key(project: str, join_keys, values) -> bytes:
        wrong = EntityKey(join_keys=list(join_keys),
                          entity_values=[Value(int32_val=v) for v in values])
        return helpers._redis_key(project, wrong)

    monkeypatch.setattr(feast_wire, "redis_key", int32_key)
    _, _, bad = mismatches(fs, redis_url, prepared)
    assert len({(view, entity) for view, entity, *_ in bad}) >= sum(
        len(v) for v in entities(prepared).values()) // 2, bad[:5]
