"""The CycloneDX 1.6 SBOM of one pushed arch image: the image itself, each image nested in its registry/, and every
other file with its sha256. Standard library only: the build leg runs it with the runner's python3.

    python3 -m clusterimg.sbom ROOTFS ARCH IMAGE DIGEST CONFIG-FILE [SAVED-FILE] > sbom.cdx.json

IMAGE is the pushed <name>:<tag>, DIGEST its manifest digest, CONFIG-FILE its image config (JSON), or `buildah inspect`'s
view of the image, which holds it as OCIv1. SAVED-FILE lists the
images the save step saved, one `ref@digest` a line, and gives each nested image the repository it came from. The
output depends only on these: no clock, and a serial number derived from the image's purl. A nested image that is
not one image for linux/ARCH fails the step: each such image is one line on stderr, and the exit status is 1.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from .deep import registry_images, rootfs_files, saved_refs

CHUNK = 1 << 20


def purl(repository: str, digest: str, arch: str, tag: str, *, known: bool = True) -> str:
    """pkg:oci in its canonical form: name is the repository's last part, lowercase; qualifiers sorted by key."""
    name = repository.rsplit("/", 1)[-1].lower()
    qualifiers = {"arch": arch, "tag": tag} | ({"repository_url": repository} if known else {})
    query = "&".join(f"{k}={quote(v, safe='/:')}" for k, v in sorted(qualifiers.items()))
    return f"pkg:oci/{quote(name)}@{quote(digest, safe=':')}?{query}"


def container(repository: str, digest: str, arch: str, tag: str, *, known: bool = True) -> dict:
    ref = purl(repository, digest, arch, tag, known=known)
    algo, _, hexa = digest.partition(":")
    hashes = [{"alg": "SHA-256", "content": hexa}] if algo == "sha256" else []
    return {"type": "container", "bom-ref": ref, "name": repository, "version": digest, "hashes": hashes, "purl": ref}


def file_component(root: Path, path: str) -> dict:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    shown = "/" + os.fsencode(os.path.relpath(path, root)).decode("utf-8", "backslashreplace")
    return {"type": "file", "name": shown, "hashes": [{"alg": "SHA-256", "content": digest.hexdigest()}]}


def created(config: dict) -> str | None:
    """The image's own created time (the build's fixed timestamp), in the form the schema's date-time takes."""
    try:
        when = datetime.fromisoformat(str(config.get("created", "")).replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def sbom(root: Path, arch: str, image: str, digest: str, config: dict, saved: list[str]) -> tuple[dict, list[str]]:
    """The SBOM, and the nested images that are not for linux/<arch> (one line each)."""
    repository, _, tag = image.rpartition(":")
    subject = container(repository, digest, arch, tag)
    images = registry_images(root)
    problems = [p for held in images.values() if (p := held.arch_problem(arch))]
    if config.get("architecture") != arch:
        problems.insert(0, f"{image}: an image for {config.get('os')}/{config.get('architecture')}, not linux/{arch}")
    origin = saved_refs(saved)
    nested = []
    for ref, held in images.items():
        # Where it came from is known only when the save step put it there; registry/ itself keeps no host.
        source = origin[ref][0].rpartition(":")[0] if ref in origin else held.name
        nested.append(container(source, held.digest, arch, held.tag, known=ref in origin))
    nested.sort(key=lambda c: c["bom-ref"])
    files = [file_component(root, path) for path in rootfs_files(root)]
    metadata = {
        "tools": {"components": [{"type": "application", "name": "clusterimage-action"}]},
        "component": subject,
    }
    if when := created(config):
        metadata = {"timestamp": when} | metadata
    bom = {
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": uuid.uuid5(uuid.NAMESPACE_URL, subject["purl"]).urn,
        "version": 1,
        "metadata": metadata,
        "components": nested + sorted(files, key=lambda c: c["name"]),
        "dependencies": [
            {"ref": subject["bom-ref"], "dependsOn": [c["bom-ref"] for c in nested]},
            *({"ref": c["bom-ref"]} for c in nested),
        ],
    }
    return bom, problems


def main(argv: list[str]) -> int:
    if len(argv) not in (5, 6):
        print("usage: python3 -m clusterimg.sbom ROOTFS ARCH IMAGE DIGEST CONFIG-FILE [SAVED-FILE]", file=sys.stderr)
        return 2
    root, arch, image, digest = Path(argv[0]), argv[1], argv[2], argv[3]
    config = json.loads(Path(argv[4]).read_text())
    config = config.get("OCIv1", config)
    saved = [line for line in Path(argv[5]).read_text().splitlines() if line.strip()] if len(argv) == 6 else []
    bom, problems = sbom(root, arch, image, digest, config, saved)
    if problems:
        for line in problems:
            print(line, file=sys.stderr)
        return 1
    json.dump(bom, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
