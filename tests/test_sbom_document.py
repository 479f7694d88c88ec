"""The SBOM module on root filesystems laid out here as an image's would be: registry/ in distribution's own layout
(tag link → manifest blob → config blob), run as the build leg runs it, with the standard library only."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL

from helpers import ROOT

DIGEST = "sha256:" + "ab" * 32
IMAGE = "ghcr.io/acme/Calico:v3.26.1-arm64"
CONFIG = {"architecture": "arm64", "os": "linux", "created": "2024-05-01T10:20:30.123456789+02:00"}


def put_blob(v2: Path, data: bytes) -> str:
    hexa = hashlib.sha256(data).hexdigest()
    path = v2 / "blobs/sha256" / hexa[:2] / hexa / "data"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return "sha256:" + hexa


def store(root: Path, name: str, tag: str, platforms: list[str]) -> str:
    """Store name:tag in root/registry: one image when given one platform, else a list of them."""
    v2 = root / "registry/docker/registry/v2"
    manifests = []
    for platform in platforms:
        os_, arch = platform.split("/")
        config = put_blob(v2, json.dumps({"architecture": arch, "os": os_}).encode())
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 1},
                    "layers": []}  # fmt: skip
        manifests.append((put_blob(v2, json.dumps(manifest).encode()), os_, arch))
    digest = manifests[0][0]
    if len(platforms) > 1:
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                 "manifests": [{"digest": d, "size": 1, "platform": {"os": o, "architecture": a}}
                               for d, o, a in manifests]}  # fmt: skip
        digest = put_blob(v2, json.dumps(index).encode())
    link = v2 / "repositories" / name / "_manifests/tags" / tag / "current/link"
    link.parent.mkdir(parents=True)
    link.write_text(digest)
    return digest


def run_sbom(tmp_path: Path, root: Path, saved: str = "") -> subprocess.CompletedProcess:
    (tmp_path / "config.json").write_text(json.dumps({"OCIv1": CONFIG}))  # as `buildah inspect` prints it
    (tmp_path / "saved").write_text(saved)
    # -S: no site-packages, as on a runner that has installed nothing.
    cmd = [sys.executable, "-S", "-m", "clusterimg.sbom", str(root), "arm64", IMAGE, DIGEST,
           str(tmp_path / "config.json"), str(tmp_path / "saved")]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT / "generator")


@pytest.fixture
def rootfs(tmp_path) -> Path:
    root = tmp_path / "rootfs"
    (root / "manifests").mkdir(parents=True)
    (root / "manifests/app.yaml").write_text("kind: ConfigMap\n")
    (root / "Kubefile").write_text("FROM scratch\n")
    (root / "odd name \xe9").write_bytes(b"\x00\x01")
    (root / "link").symlink_to("Kubefile")
    return root


def test_the_sbom_is_strict_cyclonedx_1_6_with_canonical_purls_and_the_same_bytes_every_run(tmp_path, rootfs):
    saved_digest = store(rootfs, "library/nginx", "1.25", ["linux/arm64"])
    inherited = store(rootfs, "calico/cni", "v3.26.1", ["linux/arm64"])

    first = run_sbom(tmp_path, rootfs, f"docker.io/library/nginx:1.25@{saved_digest}\n")
    second = run_sbom(tmp_path, rootfs, f"docker.io/library/nginx:1.25@{saved_digest}\n")

    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(first.stdout) is None
    bom = json.loads(first.stdout)
    assert bom["metadata"]["timestamp"] == "2024-05-01T08:20:30Z"  # the image's own time, not the clock
    purls = [bom["metadata"]["component"]["purl"]] + [c["purl"] for c in bom["components"] if "purl" in c]
    for purl in purls:
        assert PackageURL.from_string(purl).to_string() == purl
    assert [PackageURL.from_string(p).to_dict() for p in purls] == [
        {"type": "oci", "namespace": None, "name": "calico", "version": DIGEST, "subpath": None,
         "qualifiers": {"arch": "arm64", "repository_url": "ghcr.io/acme/Calico", "tag": "v3.26.1-arm64"}},
        {"type": "oci", "namespace": None, "name": "cni", "version": inherited, "subpath": None,
         "qualifiers": {"arch": "arm64", "tag": "v3.26.1"}},  # not saved by this build: where it came from is unknown
        {"type": "oci", "namespace": None, "name": "nginx", "version": saved_digest, "subpath": None,
         "qualifiers": {"arch": "arm64", "repository_url": "docker.io/library/nginx", "tag": "1.25"}},
    ]  # fmt: skip
    files = [(c["name"], c["hashes"][0]["content"]) for c in bom["components"] if c["type"] == "file"]
    assert files == [
        ("/Kubefile", hashlib.sha256(b"FROM scratch\n").hexdigest()),
        ("/manifests/app.yaml", hashlib.sha256(b"kind: ConfigMap\n").hexdigest()),
        ("/odd name \xe9", hashlib.sha256(b"\x00\x01").hexdigest()),
    ]  # registry/ is read as images; a symlink has no content of its own


@pytest.mark.parametrize(("platforms", "problem"), [
    (["linux/amd64", "linux/arm64"], "registry/ e2e/app:v1: a list of linux/amd64, linux/arm64, expected linux/arm64 only"),
    (["linux/amd64"], "registry/ e2e/app:v1: an image for linux/amd64, not linux/arm64"),
])  # fmt: skip
def test_a_nested_image_that_is_not_one_arm64_image_fails_with_one_line_naming_it(tmp_path, rootfs, platforms, problem):
    store(rootfs, "e2e/app", "v1", platforms)

    proc = run_sbom(tmp_path, rootfs)

    assert (proc.returncode, proc.stdout, proc.stderr) == (1, "", problem + "\n")


def test_ten_thousand_files_stay_far_below_the_attestation_cap(tmp_path):
    root = tmp_path / "rootfs"
    for i in range(100):
        (root / f"charts/chart-{i:03d}/templates").mkdir(parents=True)
        for j in range(100):
            (root / f"charts/chart-{i:03d}/templates/resource-{j:03d}.yaml").write_text(f"{i} {j}\n")

    proc = run_sbom(tmp_path, root)

    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.encode()) < 2 << 20  # of the 16 MiB cap
