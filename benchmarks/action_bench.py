"""Time a local two-arch build, push and fan-in through runner.py against the same buildah commands typed by hand.

    python benchmarks/action_bench.py [RUNS] [PAYLOAD_MB]

PAYLOAD_MB adds that much incompressible data to the image, closer to a real cluster image than the bare Kubefile.

Needs buildah, skopeo, docker-registry and htpasswd on PATH, and root (as the e2e tests do).
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    from clusterimg import runner
except ImportError:  # a source checkout that was not pip-installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "generator"))
    from clusterimg import runner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers import KUBEFILE, loopback_registry  # noqa: E402 - the e2e tests' registry and Kubefile

ARCHES = ("amd64", "arm64")
TARGET = 1.15


def sh(*cmd: str, stdin: str | None = None) -> None:
    subprocess.run(cmd, input=stdin, text=True, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def by_hand(ctx: Path, image: str, user: str, password: str, *build_flags: str) -> None:
    host = image.split("/", 1)[0]
    sh("buildah", "login", "--tls-verify=false", "--username", user, "--password-stdin", host, stdin=password)
    for arch in ARCHES:
        sh("buildah", "build", "-t", f"{image}:v1-{arch}", "--platform", f"linux/{arch}", *build_flags,
           "-f", str(ctx / "Kubefile"), str(ctx))  # fmt: skip
    for arch in ARCHES:
        sh("buildah", "push", "--tls-verify=false", f"{image}:v1-{arch}", f"docker://{image}:v1-{arch}")
    sh("buildah", "manifest", "create", f"{image}-list")
    for arch in ARCHES:
        sh("buildah", "manifest", "add", "--tls-verify=false", f"{image}-list", f"docker://{image}:v1-{arch}")
    sh("buildah", "manifest", "push", "--all", "--tls-verify=false", f"{image}-list", f"docker://{image}:v1")


def by_hand_fixed_time(ctx: Path, image: str, user: str, password: str) -> None:
    """The hand-typed commands with the fixed build time the scripts use, which lets both arches share layers."""
    by_hand(ctx, image, user, password, "--timestamp", "0")


def through_runner(ctx: Path, image: str, user: str, password: str) -> None:
    os.environ |= {"REGISTRY_USERNAME": user, "REGISTRY_PASSWORD": password}
    with contextlib.redirect_stderr(io.StringIO()):
        for arch in ARCHES:
            runner.build(ctx, f"{image}:v1", arch, push=True, tls_verify=False, builder="buildah")
        runner.manifest(f"{image}:v1", ARCHES, tls_verify=False)


def clean(image: str) -> None:
    subprocess.run(["buildah", "manifest", "rm", f"{image}-list"], capture_output=True, check=False)
    subprocess.run(["buildah", "rmi", "-f", *(f"{image}:v1-{a}" for a in ARCHES)], capture_output=True, check=False)


def main(runs: int = 3, payload_mb: int = 0) -> int:
    with tempfile.TemporaryDirectory(prefix="cimg-bench-") as tmp:
        root = Path(tmp)
        ctx = root / "ctx"
        (ctx / "manifests").mkdir(parents=True)
        (ctx / "manifests" / "app.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bench\n")
        (ctx / "Kubefile").write_text(KUBEFILE)
        (ctx / "manifests" / "payload.bin").write_bytes(os.urandom(payload_mb << 20))
        os.environ["REGISTRY_AUTH_FILE"] = str(root / "auth.json")
        variants = {"by hand": by_hand, "by hand, fixed time": by_hand_fixed_time, "runner.py": through_runner}
        times: dict[str, list[float]] = {name: [] for name in variants}
        user, password = "bench", secrets.token_hex(12)
        with loopback_registry(root, user, password) as host:
            for i in range(-1, runs):  # run -1 warms caches and the login, and is not counted
                # Rotate the order so no variant always runs on a warmer machine.
                order = list(variants.items())
                for name, fn in order[i % 3 :] + order[: i % 3]:
                    image = f"{host}/bench/{''.join(c if c.isalnum() else '-' for c in name)}-{i + 1}"
                    start = time.perf_counter()
                    fn(ctx, image, user, password)
                    if i >= 0:
                        times[name].append(time.perf_counter() - start)
                    clean(image)  # not timed: typing the commands by hand leaves this for later
    print(f"two-arch build + push + fan-in, {payload_mb} MB payload, median of {runs}")
    print(f"| {'variant':<19} | {'median s':>8} | runs s")
    print(f"| {'-' * 19} | {'-' * 8} | ------")
    for name, runs_s in times.items():
        print(f"| {name:<19} | {statistics.median(runs_s):>8.2f} | {' '.join(f'{t:.2f}' for t in runs_s)}")
    ours = times["runner.py"]
    for base in ("by hand", "by hand, fixed time"):
        medians = statistics.median(ours) / statistics.median(times[base])
        # Each run times every variant back to back; paired ratios shrug off a slow spell of the VM.
        paired = statistics.median(o / h for o, h in zip(ours, times[base], strict=True))
        verdict = f" (target <= {TARGET}: {'ok' if max(medians, paired) <= TARGET else 'over'})"
        print(f"runner.py / {base}: {medians:.2f} of medians, {paired:.2f} median of paired ratios", end="")
        print(verdict if base == "by hand" else "")
    return 0


if __name__ == "__main__":
    sys.exit(main(*map(int, sys.argv[1:3])))
