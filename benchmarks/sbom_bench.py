"""Times the SBOM step (scripts/sbom.sh) per pushed digest, and prints each SBOM's size.

Usage: python benchmarks/sbom_bench.py [MIB]   (default: 256 MiB of files in the large image)

Images: the examples' calico (three embedded images, saved for real from a loopback registry) and helm, each built
with buildah and pushed for amd64 and arm64; then one image of MIB MiB in 64 files, for the hashing rate. Each figure
is the median of 3 runs of the step against the same pushed digest.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "generator"))
from helpers import localize_embedded, loopback_registry, write_tree  # noqa: E402

from clusterimg import runner  # noqa: E402

RUNS = 3
ARCHES = ("amd64", "arm64")


def sbom_step(out: dict, arch: str, where: Path) -> tuple[float, Path]:
    env = {"CIMG_ARCH": arch, "CIMG_REF": out["image"], "CIMG_DIGEST": out["digest"],
           "CIMG_EMBEDDED": out.get("images", ""), "CIMG_SBOM_DIR": str(where), "CIMG_PYTHON": sys.executable}
    times, path = [], None
    for _ in range(RUNS):
        start = time.perf_counter()
        path = Path(runner.run("sbom.sh", env)["sbom"])
        times.append(time.perf_counter() - start)
    return statistics.median(times), path


def report(label: str, took: float, path: Path) -> None:
    bom = json.loads(path.read_text())
    kinds = [c["type"] for c in bom["components"]]
    print(f"  {label:<34} {took:6.2f} s  {path.stat().st_size:>9} bytes  "
          f"{kinds.count('container')} nested image(s), {kinds.count('file')} file(s)")


def main() -> None:
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    work = Path(tempfile.mkdtemp(prefix="sbom-bench-"))
    password = secrets.token_hex(12)
    os.environ |= {"REGISTRY_AUTH_FILE": str(work / "auth.json"), "REGISTRY_USERNAME": "bench",
                   "REGISTRY_PASSWORD": password, "CIMG_RETRY_DELAY": "0"}
    built = []
    try:
        (work / "registry").mkdir()
        with loopback_registry(work / "registry", "bench", password) as host:
            subprocess.run(["skopeo", "login", "--tls-verify=false", "--username", "bench", "--password-stdin", host],
                           input=password, text=True, capture_output=True, check=True)  # fmt: skip
            repo = work / "examples"
            shutil.copytree(ROOT / "examples", repo, ignore=shutil.ignore_patterns(".github"))
            localize_embedded(repo, host, work / "upstream", work / "auth.json")
            big = write_tree(work / "big", {"Kubefile": "FROM scratch\nCOPY data ./data\n"})
            for i in range(64):
                (big / "data" / f"part{i:02d}").parent.mkdir(exist_ok=True)
                (big / "data" / f"part{i:02d}").write_bytes(os.urandom((mib << 20) // 64))
            cases = [("calico", repo / "applications/calico/v3.26.1"), ("helm", repo / "applications/helm/v3.14.0"),
                     (f"large ({mib} MiB in 64 files)", big)]
            print(f"SBOM step per pushed digest on loopback (median of {RUNS}), buildah, one arch image each:")
            for label, ctx in cases:
                for arch in ARCHES:
                    name = f"{host}/bench/{label.split()[0]}:v1"
                    out = runner.build(ctx, name, arch, builder="buildah", push=True, tls_verify=False,
                                       evidence=False)  # fmt: skip
                    built.append(out["image"])
                    took, path = sbom_step(out, arch, work / "sbom")
                    report(f"{label} {arch}", took, path)
    finally:
        if built:
            subprocess.run(["buildah", "rmi", "-f", *built], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
