"""The SBOM step after a real push: built with buildah, saved from and pushed to the loopback registry, for each arch,
and every SBOM checked by cyclonedx-python-lib's strict CycloneDX 1.6 validator."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL
from test_save import ARCHES, build, buildah, labring_context, upstream  # noqa: F401 (upstream is a fixture)

from clusterimg import runner
from clusterimg.paths import scripts_dir

pytestmark = pytest.mark.e2e
CAP = 16 << 20  # the attestation size limit of actions/attest


def valid(path: Path) -> dict:
    text = path.read_text()
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    assert error is None, f"{path}: {error}"
    assert len(text.encode()) < CAP
    return json.loads(text)


def parsed(purl: str) -> PackageURL:
    found = PackageURL.from_string(purl)
    assert found.to_string() == purl  # written in the canonical form
    return found


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("arch", ARCHES)
def test_each_arch_sbom_names_the_pushed_digest_the_saved_images_and_every_file(
    capsys, tmp_path, creds, upstream, image, arch  # noqa: F811
):
    ctx = labring_context(tmp_path / "ctx", upstream, upstream.both)

    code, out, err = build(capsys, ctx, image, arch, "--push")

    assert code == 0, err[-3000:]
    bom = valid(Path(out["sbom"]))
    pushed = creds.raw(f"{image}:v1-{arch}")
    assert out["digest"] == "sha256:" + hashlib.sha256(pushed).hexdigest()
    subject = bom["metadata"]["component"]
    assert (subject["type"], subject["name"], subject["version"]) == ("container", image, out["digest"])
    purl = parsed(subject["purl"])
    assert (purl.type, purl.name, purl.version) == ("oci", image.rsplit("/", 1)[1], out["digest"])
    assert purl.qualifiers == {"arch": arch, "repository_url": image, "tag": f"v1-{arch}"}

    nested = [c for c in bom["components"] if c["type"] == "container"]
    saved = {}
    for c in nested:
        p = parsed(c["purl"])
        assert p.qualifiers["arch"] == arch and p.version == c["version"]
        saved[f"{p.qualifiers['repository_url']}:{p.qualifiers['tag']}"] = p.version
    assert sorted(f"{ref}@{digest}" for ref, digest in saved.items()) == out["images"].splitlines()
    assert bom["dependencies"][0] == {"ref": subject["bom-ref"], "dependsOn": sorted(c["bom-ref"] for c in nested)}

    files = {c["name"]: c["hashes"] for c in bom["components"] if c["type"] == "file"}
    assert files == {
        f"/{rel}": [{"alg": "SHA-256", "content": sha256(ctx / rel)}]
        for rel in ("images/shim/AppImageList", "manifests/tool.yaml")
    }

    again = runner.run("sbom.sh", {"CIMG_ARCH": arch, "CIMG_REF": out["image"], "CIMG_DIGEST": out["digest"],
                                   "CIMG_EMBEDDED": out["images"], "CIMG_SBOM_DIR": str(tmp_path / "again"),
                                   "CIMG_PYTHON": sys.executable})  # fmt: skip
    assert Path(again["sbom"]).read_bytes() == Path(out["sbom"]).read_bytes()


def test_a_nested_image_of_the_other_arch_fails_the_sbom_step_naming_it(capsys, tmp_path, creds, upstream,  # noqa: F811
                                                                        image):  # fmt: skip
    ctx = labring_context(tmp_path / "ctx", upstream, upstream.both)
    # registry/ saved for amd64, then an arm64 image built from it straight with buildah, past the build step's check.
    gen = tmp_path / "gen"
    gen.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m clusterimg "$@"\n')
    gen.chmod(0o755)
    runner.run("save.sh", {"CIMG_CONTEXT": str(ctx), "CIMG_ARCH": "amd64", "CIMG_TLS_VERIFY": "false",
                           "CIMG_IMAGE": image, "CIMG_GEN": str(gen)} | runner.credentials())  # fmt: skip
    ref = f"{image}:v1-arm64"
    buildah("build", "--platform", "linux/arm64", "-t", ref, "-f", str(ctx / "Kubefile"), str(ctx),
            authfile=creds.authfile)  # fmt: skip
    digestfile = tmp_path / "digest"
    buildah("push", "--tls-verify=false", "--digestfile", str(digestfile), ref, f"docker://{ref}",
            authfile=creds.authfile)  # fmt: skip
    env = {**os.environ, "CIMG_ARCH": "arm64", "CIMG_REF": ref, "CIMG_DIGEST": digestfile.read_text().strip(),
           "CIMG_SBOM_DIR": str(tmp_path / "sbom"), "CIMG_PYTHON": sys.executable}  # fmt: skip

    proc = subprocess.run(["bash", str(scripts_dir() / "sbom.sh")], env=env, capture_output=True, text=True)

    assert proc.returncode == 1
    name = upstream.both.split("/", 1)[1]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: no SBOM for {ref}: registry/ {name}: an image for linux/amd64, not linux/arm64"]
    assert not list((tmp_path / "sbom").glob("*"))


def test_no_evidence_pushes_without_an_sbom(capsys, tmp_path, creds, upstream, image):  # noqa: F811
    ctx = labring_context(tmp_path / "ctx", upstream, upstream.both)

    code, out, err = build(capsys, ctx, image, "arm64", "--push", "--no-evidence")

    assert code == 0, err[-3000:]
    assert out["digest"].startswith("sha256:") and "sbom" not in out
