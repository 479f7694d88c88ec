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
from dataclasses import dataclass
from pathlib import Path

from .registry import host_of

# ELF e_machine values (the System V ABI's registry) of the arches a sealos cluster image can be for, and their
# neighbours that a wrong download brings in.
MACHINES = {0x3E: "amd64", 0xB7: "arm64", 0x03: "386", 0x28: "arm", 0xF3: "riscv64", 0x15: "ppc64", 0x16: "s390x"}
V2 = "registry/docker/registry/v2"


def elf_problems(root: Path, arch: str) -> list[str]:
    problems = []
    for path in rootfs_files(root):
        machine = _elf_machine(path)
        if machine is not None and MACHINES.get(machine) != arch:
            shown = MACHINES.get(machine, f"machine {machine:#x}")
            problems.append(f"/{os.path.relpath(path, root)}: an ELF file for {shown}, not {arch}")
    return problems


def rootfs_files(root: Path):
    """The paths of the regular files outside registry/, in a stable order; registry/ holds images, read apart."""
    for directory, dirs, names in os.walk(root):
        dirs.sort()
        if Path(directory) == root / "registry":
            dirs[:] = []
            continue
        for name in sorted(names):
            path = os.path.join(directory, name)
            try:
                if stat.S_ISREG(os.lstat(path).st_mode):
                    yield path
            except OSError:
                continue


def _elf_machine(path: str) -> int | None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(20)
    except OSError:
        return None
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    return int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")


@dataclass(frozen=True)
class Held:
    """One tag of registry/, read as distribution stores it."""

    name: str  # the repository, without a registry host
    tag: str
    digest: str  # of the manifest the tag points at
    platforms: tuple[str, ...]  # os/arch of the image, or of each entry when it is a list
    listed: bool  # a list (an index), not one image

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.tag}"

    def arch_problem(self, arch: str) -> str | None:
        """A nested image must be one image for linux/<arch>: sealos serves registry/ as it is, to every node."""
        if self.listed:
            return f"registry/ {self.ref}: a list of {', '.join(sorted(self.platforms))}, expected linux/{arch} only"
        if self.platforms != (f"linux/{arch}",):
            return f"registry/ {self.ref}: an image for {self.platforms[0]}, not linux/{arch}"
        return None


def registry_images(root: Path) -> dict[str, Held]:
    """name:tag → what each tag of root/registry points at."""
    repos = root / V2 / "repositories"
    found = {}
    if not repos.is_dir():
        return found
    for tags in sorted(repos.glob("**/_manifests/tags")):
        name = tags.parent.parent.relative_to(repos).as_posix()
        for tag in sorted(p.name for p in tags.iterdir()):
            digest = (tags / tag / "current/link").read_text().strip()
            manifest = json.loads(blob(root, digest))
            if "manifests" in manifest:
                platforms = tuple(f"{m.get('platform', {}).get('os')}/{m.get('platform', {}).get('architecture')}"
                                  for m in manifest["manifests"])
            else:
                config = json.loads(blob(root, manifest["config"]["digest"]))
                platforms = (f"{config.get('os')}/{config.get('architecture')}",)
            found[f"{name}:{tag}"] = Held(name, tag, digest, platforms, "manifests" in manifest)
    return found


def blob(root: Path, digest: str) -> bytes:
    algo, _, hexa = digest.partition(":")
    return (root / V2 / "blobs" / algo / hexa[:2] / hexa / "data").read_bytes()


def saved_refs(lines: list[str]) -> dict[str, tuple[str, str]]:
    """The save step's `ref@digest` lines, keyed by name:tag as registry/ stores them: → (ref, digest)."""
    saved = {}
    for line in lines:
        ref, _, digest = line.strip().partition("@")
        saved[ref.removeprefix(host_of(ref) + "/")] = (ref, digest)
    return saved


def registry_problems(root: Path, arch: str, expected: list[str]) -> list[str]:
    images = registry_images(root)
    problems = [p for held in images.values() if (p := held.arch_problem(arch))]
    for name, (ref, digest) in saved_refs(expected).items():
        held = images.get(name)
        if held is None:
            problems.append(f"registry/ lacks {ref}, which the save step saved")
        elif digest and held.digest != digest:
            problems.append(f"registry/ {name} is {held.digest}, not the saved {digest}")
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
