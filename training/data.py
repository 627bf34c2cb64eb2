"""Ingest TLC trip records (yellow or green, parquet or CSV) into one normalised schema.

Local files, or given months fetched from the TLC trip-record site with httpx (cached on disk,
with a progress bar). Timestamps in the files are naive New York local time; the normalised frame
keeps that local wall-clock time (the city's rhythm follows it) and adds UTC instants, which
durations and Feast's point-in-time joins need.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

NY_TZ = "America/New_York"
TLC_BASE_URL = "https://d37ci6vzurychx.cloudfront.net/trip-data"
_MONTH_IN_NAME = re.compile(r"(yellow|green)_tripdata_(\d{4})-(\d{2})")

# Columns every trip file must have, per taxi type, with the kind of values they must hold.
_TIME_PREFIX = {"green": "lpep", "yellow": "tpep"}
REQUIRED = {
    "{p}_pickup_datetime": "datetime",
    "{p}_dropoff_datetime": "datetime",
    "PULocationID": "number",
    "DOLocationID": "number",
    "trip_distance": "number",
    "fare_amount": "number",
    "total_amount": "number",
}
OPTIONAL_NUMERIC = ["passenger_count", "RatecodeID", "payment_type", "VendorID"]


class SchemaError(ValueError):
    """A trip file lacks required columns or holds them with the wrong type."""


def taxi_type_of(columns: list[str]) -> str:
    """Tell green (``lpep_*``) from yellow (``tpep_*``) files by their pickup column."""
    for taxi, prefix in _TIME_PREFIX.items():
        if f"{prefix}_pickup_datetime" in columns:
            return taxi
    raise SchemaError("no pickup time column: expected lpep_pickup_datetime (green) "
                      "or tpep_pickup_datetime (yellow)")


def month_of(path: Path) -> pd.Period | None:
    """The calendar month a TLC file covers, from its name (``green_tripdata_2023-01``)."""
    m = _MONTH_IN_NAME.search(path.name)
    return pd.Period(f"{m.group(2)}-{m.group(3)}", freq="M") if m else None


def _read_raw(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix in (".csv", ".gz"):
        return pd.read_csv(path, low_memory=False)
    raise SchemaError(f"{path.name}: unsupported file type (use .parquet or .csv)")


def _check_schema(df: pd.DataFrame, taxi: str, name: str) -> None:
    prefix = _TIME_PREFIX[taxi]
    missing, wrong = [], []
    for template, kind in REQUIRED.items():
        col = template.format(p=prefix)
        if col not in df.columns:
            missing.append(col)
            continue
        series = df[col]
        if kind == "datetime" and not pd.api.types.is_datetime64_any_dtype(series):
            parsed = pd.to_datetime(series, errors="coerce")
            if parsed.isna().sum() > series.isna().sum():
                wrong.append(f"{col} (expected timestamps, got {series.dtype})")
        elif kind == "number" and not pd.api.types.is_numeric_dtype(series):
            wrong.append(f"{col} (expected numbers, got {series.dtype})")
    if missing or wrong:
        parts = []
        if missing:
            parts.append(f"missing columns: {', '.join(missing)}")
        if wrong:
            parts.append(f"wrongly typed columns: {', '.join(wrong)}")
        raise SchemaError(f"{name}: " + "; ".join(parts))


def to_utc(local: pd.Series) -> pd.Series:
    """Naive New York wall-clock times to UTC instants, defined on DST days too.

    Fall-back hours are ambiguous: they are read as daylight time. Spring-forward hours do not
    exist: they are shifted forward. Both rules are deterministic, so reruns agree.
    """
    return local.dt.tz_localize(NY_TZ, ambiguous=np.ones(len(local), dtype=bool),
                                nonexistent="shift_forward").dt.tz_convert("UTC")


def read_trips(path: Path) -> pd.DataFrame:
    """Read one TLC trip file into the normalised schema (one row per input row, none dropped)."""
    path = Path(path)
    return normalise(_read_raw(path), path.name)


def normalise(raw: pd.DataFrame, name: str, first_row: int = 0) -> pd.DataFrame:
    """Normalise raw TLC rows of file ``name`` (a whole file, or the chunk of it starting at
    row ``first_row``: ``source_row`` stays the row number in the file)."""
    taxi = taxi_type_of(list(raw.columns))
    _check_schema(raw, taxi, name)
    prefix = _TIME_PREFIX[taxi]
    pickup, dropoff = (
        pd.to_datetime(raw[f"{prefix}_{end}_datetime"], errors="coerce").astype("datetime64[us]")
        for end in ("pickup", "dropoff"))
    out = pd.DataFrame({
        "pickup_local": pickup,
        "dropoff_local": dropoff,
        "pickup_zone_id": pd.to_numeric(raw["PULocationID"], errors="coerce").astype("Int64"),
        "dropoff_zone_id": pd.to_numeric(raw["DOLocationID"], errors="coerce").astype("Int64"),
        "trip_distance": raw["trip_distance"].astype("float64"),
        "fare_amount": raw["fare_amount"].astype("float64"),
        "total_amount": raw["total_amount"].astype("float64"),
    })
    for col in OPTIONAL_NUMERIC:
        out[col.lower()] = (pd.to_numeric(raw[col], errors="coerce").astype("float64")
                            if col in raw.columns else np.nan)
    out["pickup_utc"] = to_utc(out["pickup_local"])
    out["dropoff_utc"] = to_utc(out["dropoff_local"])
    out["duration_s"] = (out["dropoff_utc"] - out["pickup_utc"]).dt.total_seconds()
    out["taxi_type"] = taxi
    out["source_file"] = name
    out["source_row"] = np.arange(first_row, first_row + len(out), dtype="int64")
    return out


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes (the dataset version is built from these)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download_month(taxi: str, month: str, cache_dir: Path, base_url: str = TLC_BASE_URL,
                   client: httpx.Client | None = None) -> Path:
    """Fetch ``{taxi}_tripdata_{month}.parquet`` into ``cache_dir`` unless already cached."""
    if taxi not in _TIME_PREFIX:
        raise ValueError(f"taxi must be 'green' or 'yellow', got {taxi!r}")
    pd.Period(month, freq="M")  # raises a clear error for a malformed month
    name = f"{taxi}_tripdata_{month}.parquet"
    target = Path(cache_dir) / name
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    own_client = client is None
    client = client or httpx.Client(timeout=httpx.Timeout(30.0, read=120.0), follow_redirects=True)
    try:
        with client.stream("GET", f"{base_url.rstrip('/')}/{name}") as resp:
            resp.raise_for_status()
            total = int(resp.headers.get("content-length", 0)) or None
            with Progress("[progress.description]{task.description}", BarColumn(),
                          DownloadColumn(), TransferSpeedColumn(), transient=True) as bar, \
                    open(partial, "wb") as out:
                task = bar.add_task(f"download {name}", total=total)
                for chunk in resp.iter_bytes():
                    out.write(chunk)
                    bar.update(task, advance=len(chunk))
    except BaseException:
        partial.unlink(missing_ok=True)  # a broken download never looks cached
        raise
    finally:
        if own_client:
            client.close()
    partial.replace(target)  # only a complete download lands in the cache
    return target
