"""The input digest: the one owner of what an image was built from. The plan computes it and hands it to the build
leg, which only writes it as a label; skip-unchanged compares it with the label of the published image."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from .model import AppVersion, Arch, Plan

LABEL = "io.clusterimage.inputs"
FORMAT = b"clusterimage-inputs v3"
CHUNK = 1 << 20


class Digests:
    """Input digests for one run: each context is hashed once, whatever the number of arches and children."""

    def __init__(self, repo: Path, found: Iterable[AppVersion], *, builder: str, sealos_version: str,
                 buildah_version: str, build_args: dict[str, str]):
        self.repo = repo
        self.by_key = {av.key: av for av in found}
        self.head = f"builder={builder}\nsealos={sealos_version}\nbuildah={buildah_version}\n".encode()
        self.build_args = build_args  # app → newline-separated KEY=VALUE
        self._contexts: dict[str, bytes] = {}
        self._digests: dict[tuple[str, str, Arch], str] = {}

    def of(self, app: str, version: str, arch: Arch) -> str:
        key = (app, version, arch)
        if key not in self._digests:
            av = self.by_key[(app, version)]
            text = FORMAT + b"\n" + f"app={app}\nversion={version}\narch={arch.value}\n".encode() + self.head
            text += "".join(f"build-arg={a}\n" for a in self.build_args.get(app, "").splitlines() if a).encode()
            # A parent's inputs are its child's: a new parent rebuilds the child.
            for parent in sorted({p.key for p in av.parents if p.key != av.key}):
                if arch in self.by_key[parent].arches:
                    text += f"parent={parent[0]}:{parent[1]}={self.of(*parent, arch)}\n".encode()
            text += self.context(av.context)
            self._digests[key] = hashlib.sha256(text).hexdigest()
        return self._digests[key]

    def parents_of(self, app: str, version: str, arch: Arch) -> tuple[str, ...]:
        """The input digest of each in-tree parent's image for `arch`, in FROM order; empty where it has none."""
        return tuple(
            self.of(*p.key, arch) if p.key != (app, version) and arch in self.by_key[p.key].arches else ""
            for p in self.by_key[(app, version)].parents
        )

    def context(self, rel: str) -> bytes:
        """`<sha256> *./<path>` per regular file, by byte order of the path; names are bytes, whatever their encoding."""
        if rel not in self._contexts:
            root = os.fsencode(self.repo / rel)
            lines = []
            for path in sorted(_files(root)):
                lines.append(_sha256(os.path.join(root, path)).encode() + b" *./" + path + b"\n")
            self._contexts[rel] = b"".join(lines)
        return self._contexts[rel]

    def fill(self, plan: Plan, times: dict[str, int] | None = None) -> Plan:
        """The plan with each image's input digest, and each build's commit time when `times` has its context."""
        times = times or {}
        return Plan(
            build=tuple(replace(t, inputs=self.of(t.app, t.version, t.arch), time=times.get(t.context),
                                parent_inputs=self.parents_of(t.app, t.version, t.arch))
                        for t in plan.build),
            manifest=tuple(replace(m, inputs=tuple(self.of(m.app, m.version, a) for a in m.arches))
                           for m in plan.manifest),
        )


def _files(root: bytes):
    for directory, _dirs, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            if stat.S_ISREG(os.lstat(path).st_mode):
                yield os.path.relpath(path, root)


def _sha256(path: bytes) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()
