"""The deep check of a built image's root filesystem, before it is pushed: every ELF file is for the target arch, and
registry/ holds each embedded image for the target arch only. Standard library only: the build leg runs it with the
runner's python3, without installing anything.

    python3 -m clusterimg.deep ROOTFS ARCH [EXPECTED-FILE]

EXPECTED-FILE lists the images the save step put into registry/, one `name:tag@digest` a line (registry host
included or not); each must be there. Prints one line per problem and exits 1 if there is any.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

from .registry import host_of

# ELF e_machine values (the System V ABI's registry) of the arches a sealos cluster image can be for, and their
# neighbours that a wrong download brings in.
MACHINES = {0x3E: "amd64", 0xB7: "arm64", 0x03: "386", 0x28: "arm", 0xF3: "riscv64", 0x15: "ppc64", 0x16: "s390x"}
V2 = "registry/docker/registry/v2"


def elf_problems(root: Path, arch: str) -> list[str]:
    problems = []
    for directory, dirs, names in os.walk(root):
        if Path(directory) == root / "registry":
            dirs[:] = []  # compressed layers: what they hold is checked as images, below
            continue
        for name in names:
            path = os.path.join(directory, name)
            machine = _elf_machine(path)
            if machine is not None and MACHINES.get(machine) != arch:
                shown = MACHINES.get(machine, f"machine {machine:#x}")
                problems.append(f"/{os.path.relpath(path, root)}: an ELF file for {shown}, not {arch}")
    return problems


def _elf_machine(path: str) -> int | None:
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
        with open(path, "rb") as fh:
            head = fh.read(20)
    except OSError:
        return None
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    return int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")


def registry_images(root: Path) -> dict[str, dict]:
    """name:tag → the manifest each tag of root/registry points at, read as distribution stores it."""
    repos = root / V2 / "repositories"
    found = {}
    if not repos.is_dir():
        return found
    for tags in sorted(repos.glob("**/_manifests/tags")):
        name = tags.parent.parent.relative_to(repos).as_posix()
        for tag in sorted(p.name for p in tags.iterdir()):
            digest = (tags / tag / "current/link").read_text().strip()
            found[f"{name}:{tag}"] = {"digest": digest, "manifest": json.loads(_blob(root, digest))}
    return found


def _blob(root: Path, digest: str) -> bytes:
    algo, _, hexa = digest.partition(":")
    return (root / V2 / "blobs" / algo / hexa[:2] / hexa / "data").read_bytes()


def registry_problems(root: Path, arch: str, expected: list[str]) -> list[str]:
    problems = []
    images = registry_images(root)
    for ref, held in images.items():
        manifest = held["manifest"]
        if "manifests" in manifest:
            platforms = sorted(f"{m.get('platform', {}).get('os')}/{m.get('platform', {}).get('architecture')}"
                               for m in manifest["manifests"])
            problems.append(f"registry/ {ref}: a list of {', '.join(platforms)}, expected linux/{arch} only")
            continue
        config = json.loads(_blob(root, manifest["config"]["digest"]))
        got = f"{config.get('os')}/{config.get('architecture')}"
        if got != f"linux/{arch}":
            problems.append(f"registry/ {ref}: an image for {got}, not linux/{arch}")
    for line in expected:
        ref, _, digest = line.strip().partition("@")
        host = host_of(ref)
        name = ref.removeprefix(host + "/")
        held = images.get(name)
        if held is None:
            problems.append(f"registry/ lacks {ref}, which the save step saved")
        elif digest and held["digest"] != digest:
            problems.append(f"registry/ {name} is {held['digest']}, not the saved {digest}")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: python3 -m clusterimg.deep ROOTFS ARCH [EXPECTED-FILE]", file=sys.stderr)
        return 2
    root, arch = Path(argv[0]), argv[1]
    expected = [line for line in Path(argv[2]).read_text().splitlines() if line.strip()] if len(argv) == 3 else []
    problems = elf_problems(root, arch) + registry_problems(root, arch, expected)
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
