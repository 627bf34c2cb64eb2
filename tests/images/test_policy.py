"""What every image must be: non-root, labelled with its source and revision, no telemetry,
alibi-detect (BSL 1.1) only in the drift monitor, and nothing of the build host's CA bundle or
secrets in any layer (`docker save` is scanned file by file)."""

from __future__ import annotations

import hashlib
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from cluster import docker, images

pytestmark = pytest.mark.images

HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
PEM = re.compile(rb"-----BEGIN CERTIFICATE-----\s+(.+?)-----END CERTIFICATE-----", re.S)


def find_module(daemon, ref: str, module: str) -> bool:
    code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    out = daemon.docker("run", "--rm", "--read-only", "--entrypoint", "python", ref, "-c", code,
                        check=False)
    assert out.returncode in (0, 1), out.stderr[-2000:]
    return out.returncode == 0


@pytest.mark.parametrize("name", images.NAMES)
def test_runs_as_non_root_with_labels_and_no_telemetry(daemon, refs, name):
    config = __import__("json").loads(daemon.docker("image", "inspect", refs[name]).stdout)[0]
    user = config["Config"]["User"]
    assert user and user.split(":")[0] not in ("0", "root"), user
    uid = daemon.docker("run", "--rm", "--read-only", "--entrypoint", "id", refs[name], "-u")
    assert uid.stdout.strip() not in ("", "0")
    labels = config["Config"]["Labels"]
    assert labels["org.opencontainers.image.revision"] == images.revision()
    assert labels["org.opencontainers.image.version"] == images.version()
    assert labels["org.opencontainers.image.source"].startswith("https://")
    assert "BENTOML_DO_NOT_TRACK=true" in config["Config"]["Env"]
    assert refs[name].endswith(f":{images.version()}-{images.revision()}")


def test_alibi_detect_only_in_the_drift_image(daemon, refs):
    assert find_module(daemon, refs["drift-monitor"], "alibi_detect")  # the check can see it
    assert not find_module(daemon, refs["serving"], "alibi_detect")
    assert not find_module(daemon, refs["job"], "alibi_detect")


@pytest.mark.parametrize("module", ["feast", "duckdb", "dask", "llvmlite"])
def test_the_serving_image_holds_only_what_serving_imports(daemon, refs, module):
    """Training-side packages stay in the job image (docs/images.md: 280 MB of the serving
    image)."""
    assert find_module(daemon, refs["job"], module)  # the check can see it
    assert not find_module(daemon, refs["serving"], module)


def _needles() -> tuple[str, set[bytes]]:
    """The host bundle's hash, and the certificates in it that Debian does not ship (the
    TLS-intercepting proxy's CA): none of them may appear in an image."""
    data = HOST_CA.read_bytes()
    debian = set()
    for crt in Path("/usr/share/ca-certificates").rglob("*.crt"):
        debian.update(b"".join(m.split()) for m in PEM.findall(crt.read_bytes()))
    local = {b"".join(m.split()) for m in PEM.findall(data)} - debian
    return hashlib.sha256(data).hexdigest(), {n[:120] for n in local}


def leaks(daemon, ref: str, tmp_path: Path) -> tuple[list[str], int]:
    """Files of any layer of ``ref`` that are the host bundle, hold one of its local CAs, or
    sit where a build secret would; and how many files were scanned."""
    host_hash, needles = _needles()
    size = HOST_CA.stat().st_size
    saved = tmp_path / "image.tar"
    subprocess.run([docker.DOCKER, "save", "-o", str(saved), ref], env=daemon.env(),
                   check=True, timeout=600)
    found, scanned = [], 0
    with tarfile.open(saved) as outer:
        for member in outer:
            if not member.name.endswith("layer.tar"):
                continue
            with tarfile.open(fileobj=outer.extractfile(member)) as layer:
                for f in layer:
                    if not f.isfile():
                        continue
                    scanned += 1
                    if re.search(r"(^|/)(run/secrets/|host-ca\.crt)", f.name):
                        found.append(f"{member.name}: {f.name}")
                        continue
                    if f.size > 2_000_000 or (f.size != size and not needles):
                        continue
                    data = layer.extractfile(f).read()
                    flat = b"".join(data.split()) if b"CERTIFICATE" in data else b""
                    if (f.size == size and hashlib.sha256(data).hexdigest() == host_hash) or \
                            any(n in flat for n in needles):
                        found.append(f"{member.name}: {f.name}")
    saved.unlink()
    return found, scanned


@pytest.mark.parametrize("name", images.NAMES)
def test_no_build_host_ca_bundle_or_secret_in_any_layer(daemon, refs, name, tmp_path):
    if not HOST_CA.exists():
        pytest.skip("this host has no CA bundle to leak")
    found, scanned = leaks(daemon, refs[name], tmp_path)
    assert scanned > 1000  # the scan saw the image's files
    assert found == []
    history = daemon.docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", refs[name])
    assert "BEGIN CERTIFICATE" not in history.stdout


def test_the_layer_scan_catches_a_copied_bundle(daemon, tmp_path):
    """Negative control: an image that copies the host bundle is caught by the same scan."""
    if not HOST_CA.exists():
        pytest.skip("this host has no CA bundle to leak")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "bundle.pem").write_bytes(HOST_CA.read_bytes())
    (ctx / "Dockerfile").write_text(f"FROM {images.BASE_REF}\nCOPY bundle.pem /opt/b.pem\n")
    ref = "taxi-serve/leak-check:test"
    daemon.docker("build", "-q", "-t", ref, str(ctx))
    try:
        found, _ = leaks(daemon, ref, tmp_path)
    finally:
        daemon.docker("rmi", "-f", ref, check=False)
    assert any(f.endswith("opt/b.pem") for f in found), found
