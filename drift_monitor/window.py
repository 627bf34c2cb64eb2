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
    except (KeyError, json.JSONDecodeError) as exc:
        raise ValueError(f"{MODEL_KEY.format(version=version)} has no valid 'columns' / "
                         f"'categorical' JSON lists: {exc}") from exc
    if not columns or not all(isinstance(c, str) for c in columns + categorical):
        raise ValueError(f"{MODEL_KEY.format(version=version)}: columns must be a non-empty "
                         "JSON list of names")
    return ModelColumns(tuple(columns), tuple(categorical))


def newest_entries(client: redis.Redis, scan_entries: int) -> dict[str, list[dict]]:
    """The newest ``scan_entries`` stream entries grouped by version, newest first."""
    by_version: dict[str, list[dict]] = {}
    upper, remaining = "+", scan_entries
    while remaining > 0:
        page = client.xrevrange(STREAM, max=upper, min="-", count=min(_PAGE, remaining))
        if not page:
            break
        for _, fields in page:
            version = fields.get(b"v")
            if version is not None:
                by_version.setdefault(version.decode(), []).append(fields)
        remaining -= len(page)
        # exclusive range continues after the oldest id of this page
        upper = "(" + page[-1][0].decode()
        if len(page) < _PAGE:
            break
    return by_version


def decode(version: str, entries: list[dict], cols: ModelColumns, window_size: int,
           sampling: str = "newest") -> Window:
    """Decode ``window_size`` of ``entries`` (newest first) into a ``Window``.

    ``sampling="newest"`` takes the newest entries (a sliding window); ``"uniform"`` takes a
    random sample of all of them, seeded by the newest entry so that one stream state always
    gives the same window. Entries whose vector length does not match ``columns`` are skipped:
    they were logged by a different build of the same version and cannot be aligned by name.
    """
    if sampling == "uniform" and len(entries) > window_size:
        rng = np.random.default_rng(zlib.crc32(entries[0].get(b"rid", b"")))
        keep = np.sort(rng.choice(len(entries), window_size, replace=False))  # newest first
        entries = [entries[i] for i in keep]
    width = len(cols.columns)
    rows, preds = [], []
    for fields in entries:
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
