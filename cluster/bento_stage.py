"""Stage the serving image's build context from a Bento (``bentoml build`` of bentofile.yaml).

The Bento carries the service code, the model and its locked requirements; the compiled trees
live beside the model in the store (training/compile.py), so they are staged with it. The model
store used is ``TAXI_IMAGE_STORE`` (default ``.cluster/images/bentoml``): when it holds no
champion yet, the pipeline runs on the bundled sample first, exactly as ``make serve`` does.

Context layout: ``bento/`` (the Bento: code, bento.yaml, locked requirements), ``store/`` (a
BENTOML_HOME with the Bento's model, its compiled trees and the champion pointer).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from cluster.docker import ROOT

STORE = Path(os.environ.get("TAXI_IMAGE_STORE", ROOT / ".cluster" / "images" / "bentoml"))
REQUIREMENTS = ROOT / "artifacts" / "bento-requirements.txt"
# What serving never imports (tests/unit/test_feast_wire.py keeps Feast and LightGBM's
# extras off the serving path): Feast and its offline store (DuckDB, ibis, SQLAlchemy), Dask
# (distributed training), lleaves and LLVM (compiling; the compiled trees load through ctypes)
# and mypy. `uv export --prune` drops each with whatever only it needed: 280 MB of the image
# (docs/images.md). Every other pin is the lock's, as the tests ran it.
SERVING_PRUNE = ("feast", "duckdb", "dask", "lleaves", "llvmlite", "mypy")


def export_requirements(out: Path = REQUIREMENTS) -> Path:
    """The Bento's requirements: the locked set, less what serving never imports."""
    from cluster.images import uv_bin

    out.parent.mkdir(parents=True, exist_ok=True)
    prune = [arg for name in SERVING_PRUNE for arg in ("--prune", name)]
    subprocess.run([uv_bin(), "export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-project",
                    "-q", *prune, "-o", str(out)], cwd=ROOT, check=True)
    return out


def _py(*args: str, env: dict, capture: bool = False) -> str:
    out = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, check=True, text=True,
                         stdout=subprocess.PIPE if capture else None)
    return (out.stdout or "").strip()


def stage(ctx: Path) -> str:
    """Fill ``ctx`` for images/serving.Dockerfile; returns the Bento tag."""
    from cluster.images import path_with_uv

    env = {**os.environ, "BENTOML_HOME": str(STORE), "BENTOML_DO_NOT_TRACK": "true",
           "PATH": path_with_uv()}
    env.pop("TAXI_MODEL_TAG", None)
    STORE.mkdir(parents=True, exist_ok=True)
    if subprocess.run([sys.executable, "-m", "training", "champion"], cwd=ROOT, env=env,
                      capture_output=True).returncode != 0:
        _py("-m", "training", "pipeline", env=env)
    model = json.loads((STORE / "taxi-serve" / "champion.json").read_text())["tag"]
    _py("-m", "training", "compile", model, env=env)
    export_requirements()
    _py("-m", "bentoml", "build", "-f", "bentofile.yaml", env={**env, "TAXI_MODEL_TAG": model})
    bento = _py("-m", "bentoml", "get", "taxi_serve:latest", "-o", "path", env=env,
                capture=True).splitlines()[-1]
    shutil.copytree(bento, ctx / "bento", ignore=shutil.ignore_patterns("models"))
    name, version = model.split(":")
    # BentoML 1.4 Bentos name their models (bento.yaml) and leave the files in the store.
    shutil.copytree(STORE / "models" / name / version, ctx / "store" / "models" / name / version)
    (ctx / "store" / "models" / name / "latest").write_text(version)
    compiled = STORE / "taxi-serve" / "compiled" / version
    if compiled.exists():
        shutil.copytree(compiled, ctx / "store" / "taxi-serve" / "compiled" / version)
    (ctx / "store" / "bentos").mkdir()  # read-only at run time: service/__main__.py links it
    (ctx / "store" / "taxi-serve").mkdir(parents=True, exist_ok=True)
    (ctx / "store" / "taxi-serve" / "champion.json").write_text(
        json.dumps({"tag": model, "history": []}))
    return model


if __name__ == "__main__":  # `make bento`
    print(export_requirements())
