"""Live windows: the newest ``taxi:predlog`` entries of each served model version, decoded.

Entry format (docs/monitoring.md): ``v`` version, ``dur``/``fare`` predictions and ``x``, the
feature vector as little-endian float32 bytes in the order of ``columns`` in the
``taxi:model:<version>`` hash (NaN = missing).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass

import numpy as np
import redis

STREAM = "taxi:predlog"
MODEL_KEY = "taxi:model:{version}"
_PAGE = 5000  # entries per XREVRANGE call: bounded replies, few round trips


@dataclass(frozen=True)
class ModelColumns:
    """The logged vector's column order and the model's categorical columns for one version."""

    columns: tuple[str, ...]
    categorical: tuple[str, ...]
    store_features: tuple[str, ...] = ()  # from (or derived from) the online feature store


@dataclass
class Window:
    """The latest entries of one model version: features (rows x columns) and predictions."""

    version: str
    columns: tuple[str, ...]
    categorical: tuple[str, ...]
    x: np.ndarray  # float32, (n, len(columns)), oldest first
    predictions: np.ndarray  # float64, (n, 2): duration s, fare USD

    def __len__(self) -> int:
        return self.x.shape[0]


def read_model_columns(client: redis.Redis, version: str) -> ModelColumns:
    """Read ``taxi:model:<version>``; raises ``ValueError`` when absent or malformed."""
    raw = client.hgetall(MODEL_KEY.format(version=version))
    if not raw:
        raise ValueError(f"{MODEL_KEY.format(version=version)} is missing: the service writes it "
                         "at startup, so the entries of this version cannot be decoded")
    try:
        columns = json.loads(raw[b"columns"])
        categorical = json.loads(raw.get(b"categorical", b"[]"))
        store = json.loads(raw.get(b"store_features", b"[]"))
    except (KeyError, json.JSONDecodeError) as exc:
        raise ValueError(f"{MODEL_KEY.format(version=version)} has no valid 'columns' / "
                         f"'categorical' JSON lists: {exc}") from exc
    if not columns or not all(isinstance(c, str) for c in columns + categorical):
        raise ValueError(f"{MODEL_KEY.format(version=version)}: columns must be a non-empty "
                         "JSON list of names")
    return ModelColumns(tuple(columns), tuple(categorical), tuple(store))


def raw_stream_client(client: redis.Redis) -> redis.Redis:
    """A client sharing ``client``'s connections whose XREVRANGE replies stay raw lists.

    redis-py turns every entry into a dict in Python, which costs about four times the read
    itself on 20,000 entries; ``newest_entries`` only needs the version of most of them.
    """
    raw = redis.Redis(connection_pool=client.connection_pool)
    raw.set_response_callback("XREVRANGE", lambda response, **_: response)
    return raw


def newest_entries(raw_client: redis.Redis, scan_entries: int) -> dict[str, list[list]]:
    """The newest ``scan_entries`` stream entries grouped by version, newest first.

    ``raw_client`` comes from ``raw_stream_client``; each entry is its flat field list
    ``[name, value, name, value, ...]``.
    """
    by_version: dict[str, list[list]] = {}
    upper, remaining = "+", scan_entries
    while remaining > 0:
        page = raw_client.xrevrange(STREAM, max=upper, min="-", count=min(_PAGE, remaining))
        if not page:
            break
        for _, flat in page:
            try:
                version = flat[flat.index(b"v") + 1]
            except ValueError:  # no version: cannot be attributed to a model
                continue
            by_version.setdefault(version.decode(), []).append(flat)
        remaining -= len(page)
        # exclusive range continues after the oldest id of this page
        upper = "(" + page[-1][0].decode()
        if len(page) < _PAGE:
            break
    return by_version


def decode(version: str, entries: list[list], cols: ModelColumns, window_size: int,
           sampling: str = "newest") -> Window:
    """Decode ``window_size`` of ``entries`` (newest first) into a ``Window``.

    ``sampling="newest"`` takes the newest entries (a sliding window); ``"uniform"`` takes a
    random sample of all of them, seeded by the newest entry so that one stream state always
    gives the same window. Entries whose vector length does not match ``columns`` are skipped:
    they were logged by a different build of the same version and cannot be aligned by name.
    """
    if sampling == "uniform" and len(entries) > window_size:
        rng = np.random.default_rng(zlib.crc32(bytes(entries[0][1])))  # first field value
        keep = np.sort(rng.choice(len(entries), window_size, replace=False))  # newest first
        entries = [entries[i] for i in keep]
    width = len(cols.columns)
    rows, preds = [], []
    for flat in entries:
        fields = dict(zip(flat[::2], flat[1::2]))
        raw = fields.get(b"x", b"")
        if len(raw) != 4 * width:
            continue
        try:
            pred = (float(fields[b"dur"]), float(fields[b"fare"]))
        except (KeyError, ValueError):
            continue
        rows.append(raw)
        preds.append(pred)
        if len(rows) == window_size:
            break
    rows.reverse()
    preds.reverse()
    x = np.frombuffer(b"".join(rows), dtype="<f4").reshape(len(rows), width)
    return Window(version, cols.columns, cols.categorical, x,
                  np.asarray(preds, dtype=np.float64).reshape(len(preds), 2))
