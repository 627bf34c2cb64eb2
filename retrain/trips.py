"""Known, labelled trips as API requests: what the blue-green smoke test sends, and what the
tests replay (with their true duration and fare as feedback)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def known_trips(path: Path, n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` validated trips of one TLC file: request fields plus the true labels."""
    from training.data import read_trips
    from training.validate import validate

    clean = validate(read_trips(path)).clean
    clean = clean[clean["pickup_zone_id"].between(1, 263) & clean["dropoff_zone_id"].between(1, 263)
                  & (clean["trip_distance"] > 0) & (clean["trip_distance"] <= 100)]
    return clean.sample(min(n, len(clean)), random_state=seed).reset_index(drop=True)


def as_requests(trips: pd.DataFrame, prefix: str) -> list[dict]:
    """The JSON bodies a ride app would send for these trips (request ids ``prefix-<i>``)."""
    out = []
    for i, row in enumerate(trips.itertuples(index=False)):
        body = {"pickup_zone_id": int(row.pickup_zone_id),
                "dropoff_zone_id": int(row.dropoff_zone_id),
                "pickup_datetime": pd.Timestamp(row.pickup_local).isoformat(),
                "trip_distance_miles": float(row.trip_distance),
                "request_id": f"{prefix}-{i}"}
        if not np.isnan(row.passenger_count) and 1 <= row.passenger_count <= 8:
            body["passenger_count"] = int(row.passenger_count)
        out.append(body)
    return out
