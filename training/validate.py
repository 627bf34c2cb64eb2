"""Validation rules for TLC trips. Rejected rows go to quarantine with their reason codes.

Every input row ends up either in the clean frame or in the quarantine frame (with a
``reasons`` column listing every rule it broke), so nothing is silently dropped; the summary
counts each rule. Bump ``RULES_VERSION`` whenever a rule changes: it is part of the dataset
version recorded with every model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from training.data import month_of

RULES_VERSION = "3"
MIN_ZONE, MAX_ZONE = 1, 263  # 264/265 are "Unknown"/"Outside of NYC": no place to predict for
MIN_DURATION_S, MAX_DURATION_S = 60.0, 3 * 3600.0
MAX_DISTANCE_MI = 100.0  # the service's own upper bound for a route distance
MAX_FARE_USD = 500.0
MAX_SPEED_MPH = 80.0
# The product predicts what the meter will say: standard (1), JFK (2), Newark (3) and
# Nassau/Westchester (4) rates. Negotiated (5), group (6), unknown (99) and missing rate codes
# are other trip populations (the missing ones are mostly dispatched trips with no passenger
# count either); they are quarantined so that they are counted, not silently mixed in.
METERED_RATECODES = (1, 2, 3, 4)

# code -> human explanation (written into the summary, so operators read rules, not code)
RULES = {
    "null_required": "a required value is missing (times, zones, distance or fare)",
    "duration_nonpositive": "dropoff is at or before pickup",
    "duration_too_short": f"trip shorter than {MIN_DURATION_S:.0f} s",
    "duration_too_long": f"trip longer than {MAX_DURATION_S / 3600:.0f} h",
    "distance_zero": "trip distance is zero or negative",
    "distance_absurd": f"trip distance above {MAX_DISTANCE_MI:.0f} miles",
    "fare_nonpositive": "fare is zero or negative (voids and refunds)",
    "fare_absurd": f"fare above ${MAX_FARE_USD:.0f}",
    "zone_out_of_range": f"pickup or dropoff zone outside {MIN_ZONE}-{MAX_ZONE}",
    "speed_too_high": f"implied speed above {MAX_SPEED_MPH:.0f} mph",
    "outside_month": "pickup time outside the month the file covers",
    "ratecode_not_metered": "rate code missing or not a metered rate (1-4)",
}


@dataclass
class ValidationResult:
    """Clean rows, quarantined rows (with ``reasons``) and the per-rule counts."""

    clean: pd.DataFrame
    quarantine: pd.DataFrame
    summary: dict = field(default_factory=dict)


def rule_masks(df: pd.DataFrame) -> dict[str, pd.Series]:
    """One boolean Series per rule: True where the row breaks it."""
    required = ["pickup_local", "dropoff_local", "pickup_zone_id", "dropoff_zone_id",
                "trip_distance", "fare_amount"]
    dur, dist, fare = df["duration_s"], df["trip_distance"], df["fare_amount"]
    zones = df[["pickup_zone_id", "dropoff_zone_id"]].astype("float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        speed = dist / (dur / 3600.0)
    file_month = {name: month_of(Path(name)) for name in df["source_file"].unique()}
    months = df["source_file"].map(file_month)
    pickup_month = df["pickup_local"].dt.to_period("M")
    masks = {
        "null_required": df[required].isna().any(axis=1),
        "duration_nonpositive": dur <= 0,
        "duration_too_short": (dur > 0) & (dur < MIN_DURATION_S),
        "duration_too_long": dur > MAX_DURATION_S,
        "distance_zero": dist <= 0,
        "distance_absurd": dist > MAX_DISTANCE_MI,
        "fare_nonpositive": fare <= 0,
        "fare_absurd": fare > MAX_FARE_USD,
        "zone_out_of_range": ((zones < MIN_ZONE) | (zones > MAX_ZONE)).any(axis=1),
        "speed_too_high": (dur > 0) & (dist > 0) & (speed > MAX_SPEED_MPH),
        "ratecode_not_metered": ~df["ratecodeid"].isin(METERED_RATECODES),
        # files whose name carries no month have nothing to check against
        "outside_month": months.notna() & pickup_month.notna() & (
            pickup_month.astype("string") != months.astype("string")),
    }
    return {code: mask.fillna(False).astype(bool) for code, mask in masks.items()}


def validate(df: pd.DataFrame) -> ValidationResult:
    """Split normalised trips into clean and quarantined rows; count every rule."""
    masks = rule_masks(df)
    broken = pd.DataFrame(masks)
    bad = broken.any(axis=1)
    flagged = broken[bad]
    reasons = pd.Series("", index=flagged.index, dtype="object")
    for code in flagged.columns:  # vectorised join of the broken rules' codes
        reasons = reasons + np.where(flagged[code], code + ",", "")
    quarantine = df[bad].copy()
    quarantine["reasons"] = reasons.str.rstrip(",").astype("string")
    clean = df[~bad].copy()
    clean["passenger_count"] = clean["passenger_count"].where(
        clean["passenger_count"].between(1, 8))  # 0 or 9+ means "not recorded", not a trip fault
    summary = {
        "rules_version": RULES_VERSION,
        "rows_in": int(len(df)),
        "rows_clean": int(len(clean)),
        "rows_quarantined": int(bad.sum()),
        "by_rule": {code: int(m.sum()) for code, m in masks.items()},
        "rules": RULES,
    }
    assert summary["rows_clean"] + summary["rows_quarantined"] == summary["rows_in"]
    return ValidationResult(clean=clean, quarantine=quarantine, summary=summary)
