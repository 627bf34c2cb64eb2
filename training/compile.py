"""Compile a model version's boosters to machine code (lleaves, via LLVM) for serving.

LightGBM's own predictor walks the ~1,300 trees of the two boosters node by node: on this
machine 27 ms for 100 real trips and ~0.4 ms for one. The same trees compiled by lleaves give
the same numbers (largest difference 2e-12) in ~7 ms and ~0.24 ms (``make bench`` prints
both). Compiling costs ~40-50 s of one core per booster, so it is a step of its own
(``python -m training compile``, run by ``make serve``/``make bench`` and by the retrain
job's build step), not part of training, and the service falls back to LightGBM for a
version nobody compiled.

lleaves emits a position-independent object file; the system linker (``ld``, binutils)
turns it into a shared library that the service calls through ctypes, so serving needs
neither LLVM nor lleaves (loading them through llvmlite cost ~70 MB of each worker's RSS).
The libraries live beside the immutable model version, not inside it:
``$BENTOML_HOME/taxi-serve/compiled/<version>/<target>.so`` with a manifest that binds them
to the sha256 of each booster file, the lleaves and llvmlite versions and the machine
architecture. They are built for a portable CPU baseline (x86-64-v2 on x86_64), because pods
on other nodes load them from the shared model store; on this machine that was as fast as
compiling for the host CPU. ``load`` accepts them only when everything matches and the
compiled trees reproduce the predictions LightGBM made for the model's reference sample.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import multiprocessing
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path

import numpy as np

from training.model import TARGETS, predict_all

TARGET_CPU = {"x86_64": "x86-64-v2", "AMD64": "x86-64-v2"}  # others: LLVM's "generic"
# Compiled and LightGBM answers may differ by float rounding only (2e-12 measured).
AGREEMENT_RTOL = 1e-9


def compiled_dir(version: str, home: Path | None = None) -> Path:
    """Where the compiled libraries of a model version (the tag's part after ':') live."""
    from training.register import store_home

    return (home or store_home()) / "taxi-serve" / "compiled" / version


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _platform() -> dict:
    """What a compiled library is bound to wherever it loads: its format and CPU target."""
    machine = platform.machine()
    return {"format": "shared-library", "machine": machine,
            "target_cpu": TARGET_CPU.get(machine, "generic")}


def _toolchain() -> dict:
    return {**_platform(), "lleaves": package_version("lleaves"),
            "llvmlite": package_version("llvmlite")}


class CompiledBooster:
    """A compiled booster with the ``predict(x, num_threads=...)`` call of a LightGBM one.

    The library exports lleaves' entry point ``forest_root(const double *rows, double *out,
    int32 start, int32 end)``: rows are C-contiguous float64 in the booster's column order.
    ctypes releases the GIL during the call, so threads split large batches.
    """

    _pool: ThreadPoolExecutor | None = None

    def __init__(self, library: Path, num_feature: int):
        self._lib = ctypes.CDLL(str(library))
        self._fn = self._lib.forest_root
        self._fn.restype = None
        self._fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32, ctypes.c_int32]
        self.n_features = num_feature

    def predict(self, x: np.ndarray, num_threads: int = 1) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype="float64")
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} columns, got {x.shape}")
        n = len(x)
        out = np.empty(n, dtype="float64")
        if num_threads <= 1 or n < 2 * num_threads:
            self._fn(x.ctypes.data, out.ctypes.data, 0, n)
            return out
        if CompiledBooster._pool is None:
            CompiledBooster._pool = ThreadPoolExecutor(max_workers=num_threads)
        step = -(-n // num_threads)
        jobs = [CompiledBooster._pool.submit(self._fn, x.ctypes.data, out.ctypes.data, i,
                                             min(i + step, n)) for i in range(0, n, step)]
        for job in jobs:
            job.result()
        return out


def _compile_one(model_file: str, library: str, target_cpu: str) -> str:
    """lleaves -> object file -> shared library (runs in a worker process)."""
    import lleaves

    obj = Path(library).with_suffix(".o")
    model = lleaves.Model(model_file=model_file)
    # finline=False: ~45 s per booster instead of ~18 min, for a ~3.5x faster model rather
    # than a little more (lleaves' docs: inlining mostly costs compile time).
    model.compile(cache=str(obj), finline=False, target_cpu=target_cpu, target_cpu_features="")
    linker = shutil.which("ld") or shutil.which("cc")
    if linker is None:
        raise RuntimeError("linking the compiled trees needs a linker: install binutils (ld)")
    subprocess.run([linker, "-shared", "-o", library, str(obj)], check=True,
                   capture_output=True)
    obj.unlink()
    return library


def compile_model(tag: str, jobs: int = 2) -> Path:
    """Compile both boosters of ``tag`` (``taxi_trip:champion`` resolves) side by side in
    ``jobs`` processes; returns the directory. A version already compiled with the same
    toolchain is left as it is."""
    import bentoml

    from training.register import resolve_tag

    model = bentoml.models.get(resolve_tag(tag))  # only its files: no need to load it
    path, version = Path(model.path), model.tag.version
    out = compiled_dir(version)
    if _manifest_matches(path, out):
        return out
    tools = _toolchain()
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=out.parent))
    try:
        # spawn: a forked child would inherit LightGBM's OpenMP state
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=ctx) as pool:
            futures = [pool.submit(_compile_one, str(path / f"{t}.txt"),
                                   str(work / f"{t}.so"), tools["target_cpu"])
                       for t in TARGETS]
            for future in futures:
                future.result()
        manifest = {**tools, "tag": str(model.tag),
                    "sha256": {t: _sha256(path / f"{t}.txt") for t in TARGETS}}
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2))
        if out.exists():  # compiled by another toolchain: replace it
            shutil.rmtree(out)
        work.rename(out)  # atomic: a reader sees all of it or none
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def _installed(name: str) -> str | None:
    try:
        return package_version(name)
    except PackageNotFoundError:
        return None


def _manifest_matches(model_path: Path, out: Path) -> bool:
    """Same booster files, format and CPU target. The compiler versions must match only where
    the compiler is installed (a newer one there means: compile again); a serving image has
    neither lleaves nor LLVM, and the reference check in ``load`` proves the library."""
    try:
        manifest = json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    tools = _platform() | {name: v for name in ("lleaves", "llvmlite") if (v := _installed(name))}
    return (all(manifest.get(k) == v for k, v in tools.items())
            and all(manifest.get("sha256", {}).get(t) == _sha256(model_path / f"{t}.txt")
                    and (out / f"{t}.so").exists() for t in TARGETS))


def load(model_path: Path, version: str, reference: Mapping[str, np.ndarray] | None,
         columns: dict[str, list[str]]) -> tuple[dict | None, str]:
    """The compiled boosters of a version, or None and the reason they cannot be used.

    ``reference``: the columns of the model's reference sample (model columns plus the
    ``pred_<target>`` LightGBM gave at training time); the compiled trees must reproduce those
    predictions, so LightGBM itself need not be loaded.
    """
    out = compiled_dir(version)
    if not out.exists():
        return None, f"not compiled (python -m training compile taxi_trip:{version})"
    if not _manifest_matches(model_path, out):
        return None, f"{out} was compiled from other files or by another toolchain"
    n = len(next(iter(reference.values()), ())) if reference else 0
    if not n:
        return None, "no reference sample to check the compiled trees against"
    try:
        compiled = {t: CompiledBooster(out / f"{t}.so", len(columns[t])) for t in TARGETS}
    except OSError as exc:
        return None, f"compiled libraries failed to load: {exc}"
    got = predict_all(compiled, columns, reference, n)
    for t in TARGETS:
        want = np.asarray(reference[f"pred_{t}"], dtype="float64")
        worst = float(np.max(np.abs(got[t] - want) / np.maximum(np.abs(want), 1.0)))
        if not worst <= AGREEMENT_RTOL:
            return None, f"compiled {t} differs from LightGBM by {worst:g} (relative)"
    return compiled, "compiled"
