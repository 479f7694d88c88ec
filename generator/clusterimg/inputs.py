"""The input digest each image carries as a label; scripts/build.sh computes the very same text."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .model import Target

LABEL = "io.clusterimage.inputs"


def digest(repo: Path, target: Target, *, builder: str, sealos_version: str, buildah_version: str) -> str:
    lines = [
        "clusterimage-inputs v2",
        f"app={target.app}",
        f"version={target.version}",
        f"arch={target.arch.value}",
        f"builder={builder}",
        f"sealos={sealos_version}",
        f"buildah={buildah_version}",
        *(f"build-arg={arg}" for arg in target.build_args.splitlines() if arg),
        f"file={target.file.rsplit('/', 1)[-1]}",
    ]
    text = "".join(line + "\n" for line in lines)
    context = repo / target.context
    files = []
    for root, _dirs, names in os.walk(context):
        for name in names:
            path = os.path.join(root, name)
            if os.path.isfile(path) and not os.path.islink(path):
                files.append(os.path.relpath(path, context))
    # `find . | LC_ALL=C sort` orders by bytes; `openssl dgst -r` and `sha256sum --binary` print "<hex> *./<path>".
    for rel in sorted(files, key=lambda p: p.encode()):
        text += f"{hashlib.sha256(Path(context, rel).read_bytes()).hexdigest()} *./{rel}\n"
    return hashlib.sha256(text.encode()).hexdigest()
