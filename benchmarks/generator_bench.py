"""Times `clusterimg-gen workflows` and `plan --all` on generated trees and prints a table.

Usage: python benchmarks/generator_bench.py [N ...]   (default: 1000 app-versions)
Each figure is the median of 5 runs of a fresh process, so import time counts, as it does for users.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KUBEFILE = 'FROM scratch\nCOPY manifests ./manifests\nCMD ["kubectl apply -f manifests"]\n'
RUNS = 5


def make_tree(root: Path, n: int) -> None:
    (root / "clusterimage.yaml").write_text("repository: bench\n")
    for i in range(n):
        d = root / "applications" / f"app{i // 10:04d}" / f"v1.{i % 10}.0"
        (d / "manifests").mkdir(parents=True)
        (d / "Kubefile").write_text(KUBEFILE)
        (d / "manifests" / "app.yaml").write_text("kind: Namespace\n")
        if i % 7 == 0:
            (d / "build_arch").write_text("amd64\n")


def measure(args: list[str]) -> tuple[float, float]:
    """Median wall seconds and peak RSS (MiB) of a fresh `python -m clusterimg …` process."""
    times, peaks = [], []
    for _ in range(RUNS):
        cmd = [sys.executable, "-c", _PROBE, *args]
        start = time.perf_counter()
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        times.append(time.perf_counter() - start)
        peaks.append(float(out.strip().splitlines()[-1]))
    return statistics.median(times), max(peaks)


# Runs the CLI, then prints its own peak RSS in MiB on the last line.
_PROBE = """
import resource, sys, io, contextlib
sys.path.insert(0, %r)
from clusterimg.cli import main
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    code = main(sys.argv[1:])
assert code == 0, code
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
""" % str(Path(__file__).resolve().parents[1] / "generator")


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [1000]
    print(f"{'app-versions':>12} {'workflows s':>12} {'plan --all s':>13} {'both s':>8} {'peak MiB':>9}")
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            repo = Path(tmp)
            make_tree(repo, n)
            wf_t, wf_m = measure(["workflows", "--repo", str(repo)])
            plan_t, plan_m = measure(["plan", "--repo", str(repo), "--all", "--format", "json"])
        print(f"{n:>12} {wf_t:>12.3f} {plan_t:>13.3f} {wf_t + plan_t:>8.3f} {max(wf_m, plan_m):>9.1f}")


if __name__ == "__main__":
    main()
