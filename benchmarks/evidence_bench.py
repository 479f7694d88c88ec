"""Times the evidence on one digest: scripts/evidence.sh signing and attesting it (signature, SLSA provenance and, for
an arch, an SBOM), attaching each as a referrer and reading all back verified. The target: at most 5 s per digest.

Usage: python benchmarks/evidence_bench.py [RUNS]   (default 3)

Each run pushes a fresh two-arch list to a loopback docker-registry with htpasswd auth (no referrers API, so the
sha256-<hex> tag fallback is written and read) and signs both arch digests and the index against a loopback Sigstore
(@sigstore/mock's Fulcio and Rekor, tests/node/sigstore_loopback.mjs). It prints each digest's time and the median
per kind of digest; the venv's python stands in for the venv evidence.sh would build from requirements/evidence.txt.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from helpers import CLAIMS, GITHUB, loopback_registry, loopback_sigstore, push_two_arch  # noqa: E402

TARGET_S = 5.0


def main(runs: int) -> int:
    times: dict[str, list[float]] = {"arch (with SBOM)": [], "index": []}
    with tempfile.TemporaryDirectory(prefix="evidence-bench-") as tmp:
        work = Path(tmp)
        (work / "registry").mkdir()
        (work / "sigstore").mkdir()
        user, password = "bench", "pw-" + secrets.token_hex(8)
        with loopback_registry(work / "registry", user, password) as host, \
                loopback_sigstore(work / "sigstore", CLAIMS) as (trust, token_url, request_token):  # fmt: skip
            authfile = work / "auth.json"
            subprocess.run(["skopeo", "login", "--authfile", str(authfile), "--tls-verify=false", "--username", user,
                            "--password-stdin", host], input=password, text=True, capture_output=True, check=True)  # fmt: skip
            env = {**os.environ, **GITHUB, "ACTIONS_ID_TOKEN_REQUEST_URL": token_url,
                   "ACTIONS_ID_TOKEN_REQUEST_TOKEN": request_token, "CIMG_SIGSTORE": str(trust),
                   "CIMG_EVIDENCE_PYTHON": sys.executable, "CIMG_USERNAME": user, "CIMG_PASSWORD": password,
                   "CIMG_TLS_VERIFY": "false", "REGISTRY_AUTH_FILE": str(work / "script-auth.json")}  # fmt: skip
            sbom = work / "sbom.json"
            sbom.write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1}))
            for run in range(runs):
                image = f"{host}/bench/app{run}"
                push_two_arch(f"{image}:v1", f"run {run}", work, authfile)
                raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", "--authfile", str(authfile),
                                      f"docker://{image}:v1"], capture_output=True, check=True).stdout  # fmt: skip
                subjects = [(m["digest"], "arch (with SBOM)", [str(sbom)]) for m in json.loads(raw)["manifests"]]
                subjects.append(("sha256:" + hashlib.sha256(raw).hexdigest(), "index", []))
                for digest, kind, extra in subjects:
                    start = time.perf_counter()
                    proc = subprocess.run([str(ROOT / "scripts/evidence.sh"), "sign", f"{image}@{digest}", *extra],
                                          capture_output=True, text=True, env=env)  # fmt: skip
                    took = time.perf_counter() - start
                    if proc.returncode:
                        raise SystemExit(f"evidence.sh failed on {image}@{digest}: {proc.stderr[-2000:]}")
                    times[kind].append(took)
                    print(f"run {run + 1}: {kind:17} {digest[:19]}…  {took:.2f} s")
    print()
    worst = max(max(v) for v in times.values())
    for kind, values in times.items():
        print(f"{kind:17} median {statistics.median(values):.2f} s  max {max(values):.2f} s  ({len(values)} digests)")
    print(f"target ≤ {TARGET_S:.0f} s per digest: {'met' if worst <= TARGET_S else 'MISSED'} (worst {worst:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3))
