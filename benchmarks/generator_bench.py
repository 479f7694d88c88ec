"""Times `clusterimg-gen workflows` and `plan --all` on generated trees against a floor, and prints a table;
then `clusterimg-gen images` on a context holding one 1.6 MB CRD manifest.

Usage: python benchmarks/generator_bench.py [N ...]   (default: 100 1000 5000 20000 app-versions)

The last columns are the plan jobs of the generated workflow, and the largest and the total of their `matrices`
outputs as GitHub counts them (UTF-16): each plan job's must stay below GitHub's 1 MB limit on one job's outputs.

Each figure is the median of 9 fresh processes, so interpreter start and imports count, as they do for users
(with the package compiled to bytecode first, as `pip install` does).
The floor is one Python process that only yaml.safe_dump()s the same workflow documents: the least any generator
of those files could cost. Peak memory is the child's max RSS.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KUBEFILE = 'FROM scratch\nCOPY manifests ./manifests\nCMD ["kubectl apply -f manifests"]\n'
RUNS = 9


def make_tree(root: Path, n: int) -> None:
    (root / "clusterimage.yaml").write_text("repository: bench\n")
    for i in range(n):
        d = root / "applications" / f"app{i // 10:04d}" / f"v1.{i % 10}.0"
        (d / "manifests").mkdir(parents=True)
        (d / "Kubefile").write_text(KUBEFILE)
        (d / "manifests" / "app.yaml").write_text("kind: Namespace\n")
        if i % 7 == 0:
            (d / "build_arch").write_text("amd64\n")


def measure(argv: list[str]) -> tuple[float, float]:
    """Median wall seconds and the largest peak RSS (MiB) over RUNS fresh processes."""
    times, peaks = [], []
    for _ in range(RUNS):
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        times.append(time.perf_counter() - start)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            raise SystemExit(f"{argv} exited {proc.returncode}")
        peaks.append(usage.ru_maxrss / 1024)
    return statistics.median(times), max(peaks)


FLOOR = """
import sys, yaml
docs = [yaml.safe_load(open(p)) for p in sys.argv[1:]]
for doc in docs:
    yaml.safe_dump(doc, sort_keys=False)
"""


def make_crd(path: Path, size: int = 1_600_000) -> None:
    """A CustomResourceDefinition shaped like the big operator CRDs: deep schemas, long descriptions, a few images."""
    path.parent.mkdir(parents=True, exist_ok=True)
    head = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nspec:\n  versions:\n"
    block = (
        "            containers:\n"
        "              description: List of containers belonging to the pod. Each container image: is pulled.\n"
        "              items:\n"
        "                properties:\n"
        "                  image:\n"
        "                    description: 'Container image name. More info: https://kubernetes.io/docs/images'\n"
        "                    type: string\n"
        "                  imagePullPolicy:\n"
        "                    type: string\n"
        "                  # image: docker.io/library/commented:1\n"
    )
    parts, n = [head], len(head)
    while n < size:
        parts.append(block)
        n += len(block)
    parts.append("      default:\n        image: docker.io/library/busybox:1.36\n")
    path.write_text("".join(parts))


def bench_images() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        crd = Path(tmp, "ctx", "manifests", "crd.yaml")
        make_crd(crd)
        size = crd.stat().st_size / 1e6
        took, peak = measure([sys.executable, "-m", "clusterimg", "images", str(crd.parent.parent)])
        from clusterimg import images

        start = time.perf_counter()
        images.collect(crd.parent.parent)
        scan = time.perf_counter() - start
    print(f"images on one {size:.1f} MB CRD: {took:.3f} s "
          f"(process), {scan * 1000:.1f} ms (the scan alone), peak {peak:.1f} MiB")


def matrices_sizes(repo: Path) -> tuple[int, int, int]:
    """Plan jobs of the generated layout, and the largest and the total of their `matrices` outputs in bytes as GitHub
    sizes outputs (UTF-16), each plan job emitting its own group's, as `plan --groups N --group I` does."""
    from clusterimg import config, plan
    from clusterimg.cli import _digests
    from clusterimg.layout import Layout, encode, output_size, split

    cfg = config.load(repo)
    tree = plan.discover(repo, cfg)
    full = plan.build_plan(cfg, tree.found)
    layout = Layout.sized_for(full, cfg.arches)
    times = {av.context: 1_700_000_000 for av in tree.found}  # a real commit time's length
    result = _digests(repo, cfg, tree.found).fill(full, times)
    sizes = [output_size(encode(layout.matrices(part, g))) for g, part in enumerate(split(result, layout.groups))]
    return layout.groups, max(sizes), sum(sizes)


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [100, 1000, 5000, 20000]
    cli = [sys.executable, "-m", "clusterimg"]
    env_path = str(ROOT / "generator")
    sys.path.insert(0, env_path)
    os.environ["PYTHONPATH"] = env_path
    # Users run an installed package, whose modules pip compiled to bytecode; do the same for the source tree.
    import compileall

    compileall.compile_dir(str(ROOT / "generator"), quiet=1)
    start, _ = measure([sys.executable, "-c", "pass"])
    print(f"python start-up alone: {start:.3f} s (paid once by the floor, twice by the two commands)")
    print(f"{'app-versions':>12} {'workflows s':>11} {'plan --all s':>12} {'both s':>7} {'floor s':>8} "
          f"{'ratio':>6} {'peak MiB':>9} {'floor MiB':>9} {'plan jobs':>9} {'largest KB':>10} {'all KB':>7}")
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            repo = Path(tmp)
            make_tree(repo, n)
            wf_t, wf_m = measure([*cli, "workflows", "--repo", str(repo)])
            plan_t, plan_m = measure([*cli, "plan", "--repo", str(repo), "--all", "--format", "json"])
            # The floor dumps the workflow documents only, not the vendored action copy (those are plain files).
            docs = sorted(str(p) for p in (repo / ".github/workflows").glob("*.yml"))
            floor_t, floor_m = measure([sys.executable, "-c", FLOOR, *docs])
            groups, largest, total = matrices_sizes(repo)
        both = wf_t + plan_t
        print(f"{n:>12} {wf_t:>11.3f} {plan_t:>12.3f} {both:>7.3f} {floor_t:>8.3f} {both / floor_t:>6.2f} "
              f"{max(wf_m, plan_m):>9.1f} {floor_m:>9.1f} {groups:>9} {largest / 1000:>10.0f} {total / 1000:>7.0f}")
    bench_images()


if __name__ == "__main__":
    main()
