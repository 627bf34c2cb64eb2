"""Write the bundled pre-fare-increase slices (data/sample/pre-increase/) from full TLC months.

The retrain tests need trips from before the TLC fare increase of December 2022 to train the
champion whose fares drift in 2023. A 15% row sample of each month is enough, and it is the
very sample the retrain job's ``subsample(fraction=0.15, seed=0)`` draws from the full month,
so the champion trained on the slices is the one the full months would give at that fraction.

Usage: .venv/bin/python data/slice.py DIR_WITH_FULL_MONTHS [--months 2021-02 ...]
The TLC schema, column order, types and the source's key-value metadata are kept.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pyarrow.parquet as pq

MONTHS = ["2021-02", "2021-03", "2022-01", "2022-02", "2022-03"]
FRACTION, SEED = 0.15, 0
OUT = Path(__file__).resolve().parent / "sample" / "pre-increase"


def slice_month(src: Path, out: Path) -> int:
    table = pq.read_table(src)
    # The same rows as retrain.retrain.subsample: pandas' sample over the file's row order.
    rows = table.to_pandas().sample(frac=FRACTION, random_state=SEED).sort_index().index
    part = table.take(rows.to_numpy())
    meta = dict(table.schema.metadata or {})
    meta[b"taxi_serve_slice"] = f"{FRACTION} row sample, seed {SEED}".encode()
    pq.write_table(part.replace_schema_metadata(meta), out, compression="zstd")
    return part.num_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path, help="folder of green_tripdata_YYYY-MM.parquet")
    parser.add_argument("--months", nargs="+", default=MONTHS)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for month in args.months:
        name = f"green_tripdata_{month}.parquet"
        n = slice_month(args.src / name, OUT / name)
        print(f"{name}: {n} rows, {(OUT / name).stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
