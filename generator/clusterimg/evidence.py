"""Signs, attests and reads back the evidence on one image digest: a signature, SLSA provenance and an SBOM, each a
Sigstore bundle attached as an OCI referrer (or, where the registry has no referrers API, listed in the sha256-<hex>
tag index), then found again and verified against this workflow's identity.

    python -m clusterimg.evidence sign REGISTRY/REPO@sha256:HEX [SBOM.json] < AUTH-FILE
    python -m clusterimg.evidence verify REGISTRY/REPO@sha256:HEX [--sbom] < AUTH-FILE
    python -m clusterimg.evidence index REGISTRY/REPO@sha256:HEX TAG < AUTH-FILE

`index` signs a published list, reads back the list and each arch image (with its SBOM), checks that TAG still names
the list, and prints the step summary in Markdown. With CIMG_LEGACY_SIGNATURES=true, `sign` and `index` also write
cosign's legacy signature, the sha256-<hex>.sig tag, which podman and CRI-O read.

Runs in a venv that holds requirements/evidence.txt (sigstore); the OCI side is the standard library's. The GitHub
identity comes from the runner's OIDC token (ACTIONS_ID_TOKEN_REQUEST_URL), the provenance from GITHUB_* env.
CIMG_SIGSTORE picks the Sigstore instance: `public-good`, or the path of a client trust config JSON (the tests' own).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from . import defaults, save
from .registry import index_entries
from .errors import FatalError, StepFailed, UserError

ISSUER = "https://token.actions.githubusercontent.com"
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
EMPTY = "application/vnd.oci.empty.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MANIFESTS = ",".join([OCI_INDEX, OCI_MANIFEST, "application/vnd.docker.distribution.manifest.list.v2+json",
                      "application/vnd.docker.distribution.manifest.v2+json"])  # fmt: skip
# What each kind of evidence is, by its in-toto predicate type. The signature is the statement cosign 3 signs.
KINDS = {
    "signature": "https://sigstore.dev/cosign/sign/v1",
    "provenance": "https://slsa.dev/provenance/v1",
    "sbom": "https://cyclonedx.org/bom",
}
PREDICATE_ANNOTATION = "dev.sigstore.bundle.predicateType"
# cosign's legacy signature (sigstore/cosign pkg/types, pkg/oci/static): an image tagged sha256-<hex>.sig whose layers
# are simple-signing payloads, each carrying its signature, certificate, chain and Rekor bundle as annotations.
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"
COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"  # a path component of an OCI repository name
SUBJECT = re.compile(rf"^([a-z0-9.-]+(?::[0-9]+)?)/({COMPONENT}(?:/{COMPONENT})*)@(sha256:[0-9a-f]{{64}})$")
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
GITHUB_ENV = ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_WORKFLOW_REF", "GITHUB_REF", "GITHUB_SHA",
              "GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT")  # fmt: skip


@dataclass(frozen=True)
class Subject:
    host: str
    path: str
    digest: str

    @property
    def name(self) -> str:
        return f"{self.host}/{self.path}"


def parse_subject(ref: str) -> Subject:
    found = SUBJECT.match(ref)
    if not found:
        raise UserError(f"evidence: subject: {ref!r}: expected a lowercase registry/repository@sha256:<64 hex>")
    return Subject(*found.groups())


def github_env(env: dict) -> dict:
    missing = [name for name in GITHUB_ENV if not env.get(name)]
    if missing:
        raise UserError(f"evidence: environment: {', '.join(missing)} unset: expected a GitHub Actions run")
    return {name: env[name] for name in GITHUB_ENV} | {
        name: env.get(name, "") for name in ("GITHUB_EVENT_NAME", "GITHUB_REPOSITORY_ID", "GITHUB_REPOSITORY_OWNER_ID",
                                             "RUNNER_ENVIRONMENT")  # fmt: skip
    }


def identity(env: dict) -> str:
    """The certificate identity a signature from this workflow carries: its workflow file at its ref."""
    return f"{env['GITHUB_SERVER_URL']}/{env['GITHUB_WORKFLOW_REF']}"


def provenance(env: dict) -> dict:
    """SLSA v1 provenance of a build by this workflow run, in the shape GitHub's own attestations use."""
    server, repo = env["GITHUB_SERVER_URL"], env["GITHUB_REPOSITORY"]
    workflow_path = env["GITHUB_WORKFLOW_REF"].split("@", 1)[0].removeprefix(f"{repo}/")
    return {
        "buildDefinition": {
            "buildType": "https://actions.github.io/buildtypes/workflow/v1",
            "externalParameters": {"workflow": {"ref": env["GITHUB_REF"], "repository": f"{server}/{repo}",
                                                "path": workflow_path}},  # fmt: skip
            "internalParameters": {"github": {
                "event_name": env["GITHUB_EVENT_NAME"], "repository_id": env["GITHUB_REPOSITORY_ID"],
                "repository_owner_id": env["GITHUB_REPOSITORY_OWNER_ID"], "runner_environment": env["RUNNER_ENVIRONMENT"],
            }},  # fmt: skip
            "resolvedDependencies": [{"uri": f"git+{server}/{repo}@{env['GITHUB_REF']}",
                                      "digest": {"gitCommit": env["GITHUB_SHA"]}}],  # fmt: skip
        },
        "runDetails": {
            "builder": {"id": identity(env)},
            "metadata": {"invocationId": f"{server}/{repo}/actions/runs/{env['GITHUB_RUN_ID']}/attempts/"
                                         f"{env['GITHUB_RUN_ATTEMPT']}"},  # fmt: skip
        },
    }


def predicates(env: dict, sbom: Path | None) -> dict[str, dict]:
    """kind → predicate, for every kind of evidence this subject gets."""
    out = {"signature": {}, "provenance": provenance(env)}
    if sbom:
        try:
            out["sbom"] = json.loads(sbom.read_text())
        except (OSError, ValueError) as exc:
            raise UserError(f"evidence: sbom: {str(sbom)!r}: expected a readable CycloneDX JSON file ({exc})") from None
    return out


class Registry(save.Registry):
    """save.py's registry client, which also writes: blobs, manifests and the referrers tag index."""

    def send(self, method: str, path: str, tail: str, body: bytes | None = None, headers: dict | None = None,
             actions: str = "pull,push"):  # fmt: skip
        """(status, headers, body) of METHOD /v2/PATH/TAIL (or of the absolute URL TAIL); retries what may pass."""
        self._ping()
        url = tail if "://" in tail else f"{self.scheme}://{self.endpoint}/v2/{path}/{tail}"

        def once():
            for fresh in (False, True):
                request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
                auth = self._authorization(path, fresh, actions)
                if auth:
                    request.add_unredirected_header("Authorization", auth)
                try:
                    with self.opener.open(request, timeout=self.settings.timeout) as answer:
                        return answer.status, answer.headers, answer.read()
                except urllib.error.HTTPError as exc:
                    if exc.code == 401 and not fresh:
                        continue
                    if exc.code >= 500 or exc.code == 429:
                        raise save.Transient(f"{method} {url}: HTTP {exc.code}") from None
                    return exc.code, exc.headers, exc.read()
                except (urllib.error.URLError, OSError) as exc:
                    raise save.Transient(f"{method} {url}: {exc}") from None
            raise AssertionError("unreachable")

        return save.retry(self.settings, f"{method} {url}", once)

    def expect(self, status: int, answer, what: str):
        if answer[0] != status:
            raise StepFailed(f"{what}: HTTP {answer[0]}: {answer[2][:200].decode(errors='replace')}")
        return answer

    def put_blob(self, path: str, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if self.send("HEAD", path, f"blobs/{digest}")[0] == 200:
            return digest
        _, headers, _ = self.expect(202, self.send("POST", path, "blobs/uploads/"), f"upload to {path}")
        location = urllib.parse.urljoin(f"{self.scheme}://{self.endpoint}/v2/{path}/blobs/uploads/", headers["Location"])
        location += ("&" if "?" in location else "?") + urllib.parse.urlencode({"digest": digest})
        self.expect(201, self.send("PUT", path, location, data, {"Content-Type": "application/octet-stream"}),
                    f"upload of {digest} to {path}")  # fmt: skip
        return digest

    def manifest(self, path: str, reference: str):
        """(status, headers, body) of the manifest REFERENCE, read only."""
        return self.send("GET", path, f"manifests/{reference}", headers={"Accept": MANIFESTS}, actions="pull")


def descriptor(media_type: str, data: bytes, **extra) -> dict:
    return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(data).hexdigest(), "size": len(data), **extra}


def canonical(doc: dict) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def attach(reg: Registry, subject: Subject, bundle: bytes, predicate_type: str) -> dict:
    """Pushes `bundle` as an artifact manifest whose subject is the image, as actions/attest does; where the registry
    has no referrers API, also adds it to the sha256-<hex> tag index. One writer per subject: the index is read,
    changed and written back, guarded by its ETag where the registry gives one."""
    status, headers, _ = reg.send("HEAD", subject.path, f"manifests/{subject.digest}", headers={"Accept": MANIFESTS})
    if status != 200:
        raise StepFailed(f"{subject.name}@{subject.digest} is not in the registry: HTTP {status}")
    subject_desc = {"mediaType": headers["Content-Type"], "digest": subject.digest,
                    "size": int(headers["Content-Length"])}  # fmt: skip
    annotations = {PREDICATE_ANNOTATION: predicate_type, "dev.sigstore.bundle.content": "dsse-envelope"}
    reg.put_blob(subject.path, bundle)
    reg.put_blob(subject.path, b"{}")
    manifest = canonical({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": BUNDLE,
        "config": descriptor(EMPTY, b"{}"), "layers": [descriptor(BUNDLE, bundle)],
        "subject": subject_desc, "annotations": annotations,
    })  # fmt: skip
    artifact = descriptor(OCI_MANIFEST, manifest, artifactType=BUNDLE, annotations=annotations)
    _, put, _ = reg.expect(201, reg.send("PUT", subject.path, f"manifests/{artifact['digest']}", manifest,
                                         {"Content-Type": OCI_MANIFEST}), f"push of an attestation to {subject.name}")  # fmt: skip
    if put.get("OCI-Subject") and referrers_api(reg, subject) is not None:
        return artifact
    tag = subject.digest.replace(":", "-")
    status, headers, body = reg.manifest(subject.path, tag)
    if status == 404:
        index, etag = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}, None
    elif status == 200:
        index, etag = json.loads(body), headers.get("ETag")
    else:
        raise StepFailed(f"cannot read the referrers tag {subject.name}:{tag}: HTTP {status}")
    if all(m.get("digest") != artifact["digest"] for m in index.get("manifests", [])):
        index["manifests"].append(artifact)
        extra = {"If-Match": etag} if etag else {}
        reg.expect(201, reg.send("PUT", subject.path, f"manifests/{tag}", canonical(index),
                                 {"Content-Type": OCI_INDEX, **extra}), f"update of {subject.name}:{tag}")  # fmt: skip
    return artifact


def referrers_api(reg: Registry, subject: Subject) -> list[dict] | None:
    """The referrers the registry's API lists, or None where it has no such API."""
    status, _, body = reg.send("GET", subject.path, f"referrers/{subject.digest}", headers={"Accept": OCI_INDEX},
                               actions="pull")  # fmt: skip
    if status != 200:
        return None
    try:
        return json.loads(body).get("manifests", [])
    except ValueError:
        return None


def referrers(reg: Registry, subject: Subject) -> tuple[str, list[dict]]:
    """(where they were found, the referrer descriptors): the API first, then the sha256-<hex> tag."""
    listed = referrers_api(reg, subject)
    if listed is not None:
        return "referrers API", listed
    status, _, body = reg.manifest(subject.path, subject.digest.replace(":", "-"))
    if status == 404:
        return "referrers tag", []
    if status != 200:
        raise StepFailed(f"cannot read the referrers of {subject.name}@{subject.digest}: HTTP {status}")
    return "referrers tag", json.loads(body).get("manifests", [])


def trust_config():
    from sigstore.models import ClientTrustConfig

    chosen = os.environ.get("CIMG_SIGSTORE", "public-good")
    if chosen == "public-good":
        return ClientTrustConfig.production()
    try:
        return ClientTrustConfig.from_json(Path(chosen).read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"evidence: CIMG_SIGSTORE: {chosen!r}: expected public-good or a client trust config "
                        f"JSON file ({exc})") from None  # fmt: skip


def sign(subject: Subject, kinds: dict[str, dict], trust, legacy: bool = False) -> dict[str, bytes]:
    """kind → Sigstore bundle of an in-toto statement about the subject, signed with the runner's OIDC identity; with
    `legacy`, also "legacy" → the bundle of a message signature over simple_signing(subject)."""
    from sigstore.dsse import DigestSet, StatementBuilder
    from sigstore.dsse import Subject as InTotoSubject
    from sigstore.oidc import IdentityToken, detect_credential
    from sigstore.sign import SigningContext

    token = detect_credential()
    if not token:
        raise UserError("evidence: no OIDC token: the job needs `permissions: id-token: write` on GitHub Actions")
    about = InTotoSubject(name=subject.name, digest=DigestSet(root={"sha256": subject.digest.split(":", 1)[1]}))
    out = {}
    with SigningContext.from_trust_config(trust).signer(IdentityToken(token), cache=True) as signer:
        for kind, predicate in kinds.items():
            statement = StatementBuilder().subjects([about]).predicate_type(KINDS[kind]).predicate(predicate).build()
            out[kind] = signer.sign_dsse(statement).to_json().encode()
        if legacy:
            out["legacy"] = signer.sign_artifact(simple_signing(subject)).to_json().encode()
    return out


def simple_signing(subject: Subject) -> bytes:
    """The payload cosign signs for an image, byte for byte as its Go encoder writes it."""
    return json.dumps({"critical": {"identity": {"docker-reference": subject.name},
                                    "image": {"docker-manifest-digest": subject.digest},
                                    "type": "cosign container image signature"}, "optional": None},
                      separators=(",", ":")).encode()  # fmt: skip


def legacy_layer(subject: Subject, bundle: bytes, trust) -> dict:
    """The .sig layer descriptor of a message signature's Sigstore bundle, annotated as cosign annotates it."""
    import base64
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    doc = json.loads(bundle)
    material, entry = doc["verificationMaterial"], doc["verificationMaterial"]["tlogEntries"][0]
    der = base64.b64decode(material["certificate"]["rawBytes"])
    chain, cert, cas = [], x509.load_der_x509_certificate(der), trust.trusted_root.get_fulcio_certs()
    while cert.issuer != cert.subject and (cert := next((ca for ca in cas if ca not in chain and issued(cert, ca)), None)):
        chain.append(cert)
    rekor = {"SignedEntryTimestamp": entry["inclusionPromise"]["signedEntryTimestamp"],
             "Payload": {"body": entry["canonicalizedBody"], "integratedTime": int(entry["integratedTime"]),
                         "logIndex": int(entry["logIndex"]),
                         "logID": base64.b64decode(entry["logId"]["keyId"]).hex()}}  # fmt: skip
    return descriptor(SIMPLE_SIGNING, simple_signing(subject), annotations={
        SIGNATURE_ANNOTATION: doc["messageSignature"]["signature"],
        CERTIFICATE_ANNOTATION: ssl.DER_cert_to_PEM_cert(der),
        CHAIN_ANNOTATION: "".join(ssl.DER_cert_to_PEM_cert(c.public_bytes(Encoding.DER)) for c in chain),
        BUNDLE_ANNOTATION: json.dumps(rekor, separators=(",", ":")),
    })  # fmt: skip


def issued(cert, ca) -> bool:
    """Whether CA signed CERT: Fulcio's old and new roots share a name, so the name alone does not tell."""
    from cryptography.exceptions import InvalidSignature

    try:
        cert.verify_directly_issued_by(ca)
        return True
    except (InvalidSignature, ValueError, TypeError):
        return False


def write_legacy(reg: Registry, subject: Subject, bundle: bytes, trust) -> str:
    """Adds the signature as a layer of the sha256-<hex>.sig image, as cosign does: read, changed and written back
    (guarded by the ETag where the registry gives one), so other signatures there stay. Returns the tag."""
    layer = legacy_layer(subject, bundle, trust)
    tag = subject.digest.replace(":", "-") + ".sig"
    status, headers, body = reg.manifest(subject.path, tag)
    if status == 404:
        layers, etag = [], None
    elif status == 200:
        layers, etag = json.loads(body).get("layers", []), headers.get("ETag")
    else:
        raise StepFailed(f"cannot read the signature tag {subject.name}:{tag}: HTTP {status}")
    layers.append(layer)
    reg.put_blob(subject.path, simple_signing(subject))
    config = canonical({"architecture": "", "config": {}, "created": "0001-01-01T00:00:00Z", "os": "",
                        "rootfs": {"type": "layers", "diff_ids": [x["digest"] for x in layers]}})  # fmt: skip
    reg.put_blob(subject.path, config)
    manifest = canonical({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config),
                          "layers": layers})  # fmt: skip
    extra = {"If-Match": etag} if etag else {}
    reg.expect(201, reg.send("PUT", subject.path, f"manifests/{tag}", manifest,
                             {"Content-Type": OCI_MANIFEST, **extra}), f"push of the signature {subject.name}:{tag}")  # fmt: skip
    return tag


def legacy_enabled() -> bool:
    chosen = os.environ.get("CIMG_LEGACY_SIGNATURES", "false")
    if chosen not in ("true", "false"):
        raise UserError(f"evidence: CIMG_LEGACY_SIGNATURES: {chosen!r}: expected true or false")
    return chosen == "true"


def sign_and_attach(reg: Registry, subject: Subject, kinds: dict[str, dict], trust, legacy: bool) -> None:
    for kind, bundle in sign(subject, kinds, trust, legacy).items():
        if kind == "legacy":
            write_legacy(reg, subject, bundle, trust)
        else:
            attach(reg, subject, bundle, KINDS[kind])


def verify(reg: Registry, subject: Subject, wanted: list[str], trust, env: dict) -> list[str]:
    """One line per kind of evidence found and verified; StepFailed naming what is missing or fails."""
    where, found, detail = read_back(reg, subject, trust, env)
    missing = [kind for kind in wanted if kind not in found]
    if missing:
        raise StepFailed(f"{subject.name}@{subject.digest}: no verified {', '.join(missing)} "
                         f"for {identity(env)}: {detail}")  # fmt: skip
    return [f"{kind} {found[kind]} ({where})" for kind in wanted]


def read_back(reg: Registry, subject: Subject, trust, env: dict) -> tuple[str, dict[str, str], str]:
    """(where the referrers were found, kind → referrer digest of each verified piece, what went wrong)."""
    from sigstore.errors import VerificationError
    from sigstore.models import Bundle
    from sigstore.verify import Verifier, policy

    verifier = Verifier(trusted_root=trust.trusted_root)
    rule = policy.AllOf([policy.Identity(identity=identity(env), issuer=ISSUER),
                         policy.GitHubWorkflowRepository(env["GITHUB_REPOSITORY"])])  # fmt: skip
    where, listed = referrers(reg, subject)
    found: dict[str, str] = {}
    problems = []
    for entry in listed:
        if entry.get("artifactType") != BUNDLE:
            continue
        status, _, body = reg.manifest(subject.path, entry["digest"])
        if status != 200:
            problems.append(f"referrer {entry['digest']}: HTTP {status}")
            continue
        layers = json.loads(body).get("layers") or [{}]
        status, _, blob = reg.send("GET", subject.path, f"blobs/{layers[0].get('digest')}", actions="pull")
        if status != 200 or "sha256:" + hashlib.sha256(blob).hexdigest() != layers[0].get("digest"):
            problems.append(f"referrer {entry['digest']}: its bundle cannot be read")
            continue
        try:
            payload_type, payload = verifier.verify_dsse(Bundle.from_json(blob), rule)
            statement = json.loads(payload)
        except (VerificationError, ValueError) as exc:
            problems.append(f"referrer {entry['digest']}: {exc}")
            continue
        digests = [s.get("digest", {}).get("sha256") for s in statement.get("subject", [])]
        kind = next((k for k, t in KINDS.items() if t == statement.get("predicateType")), None)
        if payload_type == "application/vnd.in-toto+json" and kind and subject.digest[7:] in digests:
            found.setdefault(kind, entry["digest"])
    return where, found, "; ".join(problems) or f"{len(listed)} referrer(s) found through the {where}"


def arches_of(reg: Registry, subject: Subject) -> list[tuple[str, Subject]]:
    """(os/arch, subject) of each entry of the list; an entry without a real platform, such as the unknown/unknown
    ones some builders add for attestations, fails."""
    status, _, body = reg.manifest(subject.path, subject.digest)
    if status != 200 or "sha256:" + hashlib.sha256(body).hexdigest() != subject.digest:
        raise StepFailed(f"cannot read the list {subject.name}@{subject.digest}: HTTP {status}")
    out = []
    for platform, digest in index_entries(json.loads(body)) or []:
        name = "/".join(part or "unknown" for part in (platform or "/").split("/"))
        if "unknown" in name.split("/"):
            raise StepFailed(f"{subject.name}@{subject.digest} lists an entry {digest} for {name}")
        out.append((name, Subject(subject.host, subject.path, digest)))
    if not out:
        raise StepFailed(f"{subject.name}@{subject.digest} is not a list of arch images")
    return out


def tagged(reg: Registry, subject: Subject, tag: str) -> str:
    status, headers, body = reg.manifest(subject.path, tag)
    if status != 200:
        raise StepFailed(f"cannot read {subject.name}:{tag}: HTTP {status}")
    return headers.get("Docker-Content-Digest") or "sha256:" + hashlib.sha256(body).hexdigest()


def index(reg: Registry, subject: Subject, tag: str, trust, env: dict,
          legacy: bool = False) -> tuple[str, bool, list[str]]:
    """Signs the list, then reads back it and each arch image: (the step summary, whether everything was found, what
    was not)."""
    if tagged(reg, subject, tag) != subject.digest:
        raise StepFailed(f"{subject.name}:{tag} no longer names {subject.digest}")
    arches = arches_of(reg, subject)
    sign_and_attach(reg, subject, predicates(env, None), trust, legacy)
    rows, problems, places = [], [], set()
    for name, item, wanted in [("list", subject, ["signature", "provenance"]),
                               *((n, s, list(KINDS)) for n, s in arches)]:  # fmt: skip
        where, found, detail = read_back(reg, item, trust, env)
        places.add(where)
        missing = [kind for kind in wanted if kind not in found]
        if missing:
            problems.append(f"{name} {item.digest}: no verified {', '.join(missing)}: {detail}")
        rows.append((name, item.digest, *("✅" if k in found else "❌" if k in wanted else "—" for k in KINDS)))
    after = tagged(reg, subject, tag)
    if after != subject.digest:
        problems.append(f"{subject.name}:{tag} names {after} after attaching, not {subject.digest}")
    return summary(subject, tag, rows, sorted(places), env, legacy), not problems, problems


def summary(subject: Subject, tag: str, rows: list[tuple], places: list[str], env: dict, legacy: bool) -> str:
    """The step summary: what each digest carries, then the commands that check it."""
    repo = env["GITHUB_REPOSITORY"]
    workflow = f"{env['GITHUB_SERVER_URL']}/{env['GITHUB_WORKFLOW_REF'].split('@', 1)[0]}@"
    who = (f"--certificate-identity-regexp '^{re.escape(workflow)}' "
           f"--certificate-oidc-issuer {ISSUER}")  # fmt: skip
    lines = [f"### Evidence on {subject.name}:{tag}", "", "| arch | digest | signature | provenance | SBOM |",
             "| --- | --- | --- | --- | --- |", *(f"| {n} | `{d}` | {s} | {p} | {b} |" for n, d, s, p, b in rows), "",
             f"Found through the {' and the '.join(places)}, each verified for `{identity(env)}`.", "",
             "Check it yourself (any digest above; cosign 3 reads Sigstore bundles attached as OCI referrers):", "",
             "```sh"]  # fmt: skip
    for name, digest, *_ in rows:
        ref = f"{subject.name}@{digest}"
        lines += [f"gh attestation verify oci://{ref} --repo {repo} --bundle-from-oci",
                  f"cosign verify {who} {ref}",
                  f"cosign verify-attestation --type slsaprovenance1 {who} {ref}"]  # fmt: skip
        if name != "list":
            lines.append(f"cosign verify-attestation --type cyclonedx {who} {ref}")
    lines += ["```", ""]
    if legacy:
        lines.append("podman, CRI-O and skopeo (containers/image) read cosign's legacy `.sig` signatures, written for "
                     "each digest above: a `sigstoreSigned` rule in `policy.json` with `signedIdentity: "
                     "matchRepository` checks them.")  # fmt: skip
    else:
        lines.append("podman, CRI-O and skopeo (containers/image) read only cosign's legacy `.sig` signatures, which are "
                     "not written (the config key legacy_signatures turns them on): a `sigstoreSigned` rule in "
                     "`policy.json` rejects these images; check them with the commands above before they are pulled.")  # fmt: skip
    if os.environ.get("CIMG_SIGSTORE", "public-good") != "public-good":
        lines += ["", "Signed with another Sigstore instance: give each command its trusted root "
                      "(`--custom-trusted-root` for gh, `--trusted-root` for cosign)."]  # fmt: skip
    return "\n".join(lines) + "\n"


def registry(subject: Subject, auth_text: str) -> Registry:
    env = os.environ.get
    settings = save.Settings("", subject.host, env("CIMG_TLS_VERIFY", defaults.text(defaults.TLS_VERIFY)) != "false",
                             1, int(env("CIMG_RETRIES", str(defaults.RETRIES))), int(env("CIMG_NET_TIMEOUT", "300")))  # fmt: skip
    return Registry(subject.host, settings, save.auths_from(auth_text))


USAGE = ("usage: python -m clusterimg.evidence sign SUBJECT [SBOM] | verify SUBJECT [--sbom] | index SUBJECT TAG"
         "  < AUTH-FILE")


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3) or argv[0] not in ("sign", "verify", "index") or (argv[0] == "verify" and argv[2:] not in
                                                                                  ([], ["--sbom"])) or (  # fmt: skip
            argv[0] == "index" and len(argv) != 3):
        print(USAGE, file=sys.stderr)
        return 2
    try:
        subject = parse_subject(argv[1])
        env = github_env(dict(os.environ))
        sbom = Path(argv[2]) if argv[0] == "sign" and len(argv) == 3 else None
        if argv[0] == "index" and not TAG.fullmatch(argv[2]):
            raise UserError(f"evidence: tag: {argv[2]!r}: expected an OCI tag")
        kinds = predicates(env, sbom)
        wanted = list(kinds) if argv[0] == "sign" else ["signature", "provenance"] + ["sbom"] * (argv[2:] == ["--sbom"])
        legacy = legacy_enabled()
        reg = registry(subject, sys.stdin.read())
        trust = trust_config()
        if argv[0] == "index":
            text, ok, problems = index(reg, subject, argv[2], trust, env, legacy)
            print(text, end="")
            if not ok:
                raise StepFailed("; ".join(problems))
            return 0
        if argv[0] == "sign":
            sign_and_attach(reg, subject, kinds, trust, legacy)
        for line in verify(reg, subject, wanted, trust, env):
            print(f"{subject.name}@{subject.digest} {line}")
    except FatalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except (save.Transient, save.Final) as exc:
        print(f"error: {subject.name}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
