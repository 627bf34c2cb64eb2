"""Build the taxi-serve images on the private dockerd (cluster/docker.py).

    python -m cluster.images base              # Debian bookworm base (debootstrap + import)
    python -m cluster.images build [NAME...]   # serving, drift-monitor, job
    python -m cluster.images ref NAME          # the image reference `build` produces
    python -m cluster.images tag               # the tag alone (helm --set image.tag=...)

Tags are immutable: ``<project version>-<git short sha>`` (``-dirty`` when the work tree has
uncommitted changes). The base image is a build argument (``python:3.11-slim`` in the
Dockerfiles); these machines reach no registry, so ``make`` passes the debootstrap base.
The host's CA bundle (pip and uv reach PyPI through a TLS-intercepting proxy here) is given to
the build as a BuildKit secret: it is mounted during the RUN steps that download, and it never
lands in a layer or in the build context.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import tomllib
from pathlib import Path

import typer

from cluster import docker

ROOT = docker.ROOT
IMAGES = ROOT / "images"
WORK = ROOT / ".cluster" / "images"
BASE_REF = "taxi-serve/base:bookworm"
# Registry prefix of every image; the chart's values name the same repositories, so a local
# cluster runs what `make images` built without a push (pullPolicy IfNotPresent).
REGISTRY = os.environ.get("TAXI_IMAGE_REGISTRY", "ghcr.io/taxi-serve")
NAMES = ("serving", "drift-monitor", "job")
# Built only on request (`build redis prometheus`): the dev stack's Redis and Prometheus from
# Debian's packages, for clusters that reach no registry (cluster/devstack/, the real-node
# tests). Besides the commit tag they get DEV_TAG, the tag cluster/devstack/ names.
DEV_NAMES = ("redis", "prometheus")
DEV_TAG = "dev"
REPOSITORY = {"serving": "taxi-serve", "drift-monitor": "drift-monitor", "job": "job",
              "redis": "dev-redis", "prometheus": "dev-prometheus"}
HOST_CA = Path(os.environ.get("TAXI_BUILD_CA", "/etc/ssl/certs/ca-certificates.crt"))
SOURCE = "https://github.com/taxi-serve/taxi-serve"
# Debian packages of the base: Python, venv, CA roots (for users' TLS, from Debian) and tini
# (PID 1 that forwards SIGTERM and reaps zombies).
BASE_PACKAGES = "python3,python3-venv,ca-certificates,tini"

app = typer.Typer(add_completion=False, help=__doc__)


def version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def revision() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()

    sha = git("rev-parse", "--short=8", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return f"{sha}-dirty" if dirty else sha


def tag() -> str:
    return f"{version()}-{revision()}"


def ref(name: str) -> str:
    return f"{REGISTRY}/{REPOSITORY[name]}:{tag()}"


def debian_mirror() -> str:
    """The first Debian URI of the host's apt sources (deb822 or one-line format)."""
    for path in (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")):
        if path.exists():
            for line in path.read_text().splitlines():
                words = line.split()
                if line.startswith("URIs:") and "security" not in line:
                    return words[1]
                if words[:1] == ["deb"] and "security" not in line:
                    return next(w for w in words[1:] if "://" in w)
    return "http://deb.debian.org/debian"


def build_base(daemon: docker.Daemon, force: bool = False) -> str:
    if not force and daemon.docker("image", "inspect", BASE_REF, check=False).returncode == 0:
        return BASE_REF
    rootfs = Path(tempfile.mkdtemp(prefix="base-", dir=WORK))
    try:
        subprocess.run(["debootstrap", "--variant=minbase", f"--include={BASE_PACKAGES}",
                        "bookworm", str(rootfs), debian_mirror()], check=True)
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for f in (rootfs / junk).glob("*"):
                if f.is_file():
                    f.unlink()
        tar = subprocess.Popen(["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."],
                               stdout=subprocess.PIPE)
        subprocess.run([docker.DOCKER, "import", "-c", 'CMD ["python3"]', "-", BASE_REF],
                       stdin=tar.stdout, env=daemon.env(), check=True)
        tar.wait()
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
    return BASE_REF


def uv_bin() -> str:
    """uv as make finds it: $UV, then PATH, then the private copy `make setup` installs."""
    return os.environ.get("UV") or shutil.which("uv") or str(ROOT / ".tools" / "uv" / "bin" / "uv")


def path_with_uv() -> str:
    """PATH with uv's directory first: `bentoml build` runs uv from PATH (and tries pip, absent
    in a uv venv, without it)."""
    return f"{Path(uv_bin()).parent}{os.pathsep}{os.environ.get('PATH', '')}"


def _export(args: list[str], out: Path) -> None:
    subprocess.run([uv_bin(), "export", "--frozen", "--no-hashes", "--no-emit-project", "-q",
                    "-o", str(out), *args], cwd=ROOT, check=True)


def _context(name: str) -> Path:
    """A build context holding only what the image needs (not the whole checkout)."""
    ctx = WORK / f"ctx-{name}"
    shutil.rmtree(ctx, ignore_errors=True)
    ctx.mkdir(parents=True)
    if name == "serving":
        from cluster import bento_stage

        bento_stage.stage(ctx)
    elif name == "drift-monitor":
        _export(["--project", "drift_monitor", "--no-dev"], ctx / "requirements.txt")
        shutil.copytree(ROOT / "drift_monitor", ctx / "drift_monitor",
                        ignore=shutil.ignore_patterns(".venv", "tests", "__pycache__",
                                                      "uv.lock", "pyproject.toml"))
    elif name == "job":
        _export(["--no-dev", "--group", "job"], ctx / "requirements.txt")
        for part in ("common", "training", "retrain", "service", "feature_repo", "proto",
                     "data"):
            shutil.copytree(ROOT / part, ctx / part, ignore=shutil.ignore_patterns(
                "__pycache__", "data", "registry*.db") if part == "feature_repo" else
                shutil.ignore_patterns("__pycache__"))
        (ctx / "helm").mkdir()
        shutil.copytree(ROOT / "helm" / "taxi-serve", ctx / "helm" / "taxi-serve")
        shutil.copy(ROOT / ".tools" / "bin" / "helm", ctx / "helm-bin")
    elif name == "prometheus":
        shutil.copy(ROOT / "cluster" / "devstack" / "pod_sd.py", ctx / "pod_sd.py")
    shutil.copy(IMAGES / f"{name}.Dockerfile", ctx / "Dockerfile")
    # COPY keeps modes, and the images run as a non-root user: BentoML writes model files
    # owner-only, so make everything readable (executables stay executable).
    for path in ctx.rglob("*"):
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() or path.stat().st_mode & 0o100 else 0o644)
    return ctx


def build_one(daemon: docker.Daemon, name: str, base: str) -> tuple[str, float]:
    ctx = _context(name)
    image = ref(name)
    cmd = ["build", "--network", "host", "--build-arg", f"BASE_IMAGE={base}",
           "--build-arg", f"VERSION={version()}", "--build-arg", f"REVISION={revision()}",
           "--build-arg", f"SOURCE={SOURCE}", "-t", image]
    if name in DEV_NAMES:
        cmd += ["-t", f"{REGISTRY}/{REPOSITORY[name]}:{DEV_TAG}"]
    if HOST_CA.exists():
        cmd += ["--secret", f"id=ca,src={HOST_CA}"]
    start = time.monotonic()
    subprocess.run([docker.DOCKER, *cmd, str(ctx)], env=daemon.env(), check=True)
    return image, time.monotonic() - start


@app.command("base")
def base_cmd(force: bool = typer.Option(False, help="rebuild even if it exists")) -> None:
    """Build the Debian bookworm base image with debootstrap and import it."""
    WORK.mkdir(parents=True, exist_ok=True)
    with docker.running() as daemon:
        print(build_base(daemon, force))


@app.command("build")
def build_cmd(names: list[str] = typer.Argument(
                  None, help="serving, drift-monitor, job; dev images: redis, prometheus"),
              base: str = typer.Option(BASE_REF, help="base image (a build argument)")) -> None:
    """Build the images (all by default) and print each reference, build time and size."""
    WORK.mkdir(parents=True, exist_ok=True)
    chosen = names or list(NAMES)
    unknown = set(chosen) - set(NAMES) - set(DEV_NAMES)
    if unknown:
        raise typer.BadParameter(f"unknown image(s): {', '.join(sorted(unknown))}")
    with docker.running() as daemon:
        for name in chosen:
            image, seconds = build_one(daemon, name, base)
            size = daemon.docker("image", "inspect", "-f", "{{.Size}}", image).stdout.strip()
            print(f"{image}  built in {seconds:.1f} s  {int(size) / 1e6:.0f} MB")


@app.command("ref")
def ref_cmd(name: str) -> None:
    """The reference `build` gives image NAME at this commit."""
    print(ref(name))


@app.command("tag")
def tag_cmd() -> None:
    """The tag `build` gives every image at this commit."""
    print(tag())


if __name__ == "__main__":
    app()
