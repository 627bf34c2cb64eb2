"""Well-known locations inside the project checkout."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DIR = ROOT / "data" / "sample"
ZONES_CSV = SAMPLE_DIR / "zones.csv"
FEATURE_REPO = ROOT / "feature_repo"
ARTIFACTS = ROOT / "artifacts"
