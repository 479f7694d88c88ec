"""Times the plan job's Plan step under act, before and after the runner installed from hashed locks.

Usage: python benchmarks/plan_step_bench.py [RUNS] [BEFORE_REV]   (default: 5 runs; the commit before
requirements/runner.txt was added)

Both sides run the workflow their own generator writes for the example tree, with their own action copy, in act's
host mode, as tests/e2e/test_act.py does, and read act's step timing (`Success - Main Plan [1.23s]`). Each run gets
a fresh RUNNER_TEMP, as a GitHub runner does, so every run installs clusterimg-gen; pip's download cache is warm for
both sides. Two events: a pull request (planning imports pyyaml, jinja2 and click only) and a push that looks up its
workflow's last successful run (it also needs the GitHub client), against the loopback GitHub of the tests.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from fake_github import FakeGitHub  # noqa: E402
from helpers import copy_action, git  # noqa: E402

TOKEN = "ghs_" + "7" * 36
STEP = re.compile(r"Success - Main Plan \[([0-9.]+)(ms|s)\]")
ACTION_FILES = ("action.yml", "plan", "manifest", "lock", "scripts", "templates", "generator", "pyproject.toml",
                "requirements")


def before_rev() -> str:
    added = subprocess.run(["git", "-C", str(ROOT), "log", "--diff-filter=A", "--format=%H", "-1", "--",
                            "requirements/runner.txt"], capture_output=True, text=True, check=True).stdout.strip()
    return f"{added}~1"


def export(rev: str, dest: Path) -> None:
    """The action files of `rev` (or of the work tree for None) into dest."""
    if rev is None:
        copy_action(dest)
        return
    paths = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "--name-only", rev], capture_output=True, text=True,
                           check=True).stdout.split()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev,
                              *[p for p in ACTION_FILES if p in paths]], capture_output=True, check=True).stdout
    dest.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")


def user_repo(root: Path, rev: str | None) -> tuple[Path, str]:
    """The example tree with the action of `rev` and the workflow its generator writes; returns (repo, base sha)."""
    repo = root / "repo"
    shutil.copytree(ROOT / "examples/applications", repo / "applications")
    export(rev, repo / "clusterimage-action")
    (repo / "clusterimage.yaml").write_text(
        "registry: 127.0.0.1:5000\nrepository: bench\naction: ./clusterimage-action\nbuilder: buildah\n"
        "tools: system\ntls_verify: false\ncheck_images: false\nsave_images: false\n"
    )
    env = {**os.environ, "PYTHONPATH": str(repo / "clusterimage-action/generator")}
    subprocess.run([sys.executable, "-m", "clusterimg", "workflows", "--repo", str(repo)], check=True, env=env,
                   capture_output=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "tree")
    base = git(repo, "rev-parse", "HEAD")
    kubefile = repo / "applications/openebs/v3.9.0/Kubefile"
    kubefile.write_text(kubefile.read_text() + "# touched\n")
    git(repo, "commit", "-qam", "touch openebs")
    return repo, base


def plan_seconds(repo: Path, event: str, payload: dict, api: str, work: Path) -> float:
    (work / "event.json").write_text(json.dumps(payload))
    (work / "secrets.env").write_text(f"GITHUB_TOKEN={TOKEN}\n")
    temp = Path(tempfile.mkdtemp(dir=work))
    proc = subprocess.run(
        [shutil.which("act") or "act", event, "-j", "plan", "-W", ".github/workflows/clusterimage.yml",
         "-e", str(work / "event.json"), "--secret-file", str(work / "secrets.env"), "--no-cache-server",
         "-P", "ubuntu-24.04=-self-hosted", "--env", f"GITHUB_API_URL={api}", "--env", f"RUNNER_TEMP={temp}"],
        cwd=repo, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    found = STEP.findall(out)
    if proc.returncode or not found:
        raise SystemExit(f"act failed:\n{out[-3000:]}")
    shutil.rmtree(temp, ignore_errors=True)
    return max(float(v) / (1000 if unit == "ms" else 1) for v, unit in found)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    rev = sys.argv[2] if len(sys.argv) > 2 else before_rev()
    results: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp, FakeGitHub() as gh:
        gh.token = TOKEN
        sides = {"before": user_repo(Path(tmp) / "before", rev), "after": user_repo(Path(tmp) / "after", None)}
        for i in range(runs):
            for side, (repo, base) in sides.items():
                head = git(repo, "rev-parse", "HEAD")
                events = {
                    "pull_request": {"pull_request": {"base": {"sha": base}, "head": {"sha": head}}},
                    "push": {"ref": "refs/heads/main", "before": base, "after": head},
                }
                for event, payload in events.items():
                    secs = plan_seconds(repo, event, payload, gh.url, Path(tmp))
                    results.setdefault((event, side), []).append(secs)
                    print(f"run {i + 1}/{runs} {event:12} {side:6} {secs:6.2f} s", file=sys.stderr)
    print(f"Plan step under act, median of {runs} (before = {rev}):")
    print("| event | before | after | after / before |")
    print("|---|---:|---:|---:|")
    for event in ("pull_request", "push"):
        b, a = (statistics.median(results[(event, s)]) for s in ("before", "after"))
        print(f"| {event} | {b:.2f} s | {a:.2f} s | {a / b:.2f} |")


if __name__ == "__main__":
    main()
