"""What the runner spends around the real work: the plan step, and a build leg outside its build and push.

Usage: python benchmarks/runner_bench.py [RUNS] [BEFORE_REV]   (default: 5 runs of the work tree; with BEFORE_REV, the
action of that commit too, run for run)

Plan step (target: 5 s). The plan job's Plan step under act, in host mode as tests/e2e/test_act.py runs it, for the
workflow each side's generator writes for the example tree, timed by act (`Success - Main Plan [1.23s]`); checkout is
a step of its own. Each run gets a fresh RUNNER_TEMP, as a GitHub runner does, so every run installs clusterimg-gen;
pip's download cache is warm. Two events: a pull request, and a push that looks up its workflow's last successful run
in the loopback GitHub of the tests.

Build leg (target: 1 s). The build action's scripts in action.yml's order, with its steps' env (tools: system, builder
buildah, check and save embedded images, push), for a context that embeds no images, against a loopback registry
with auth, each run with a fresh RUNNER_TEMP. A buildah on PATH ahead of the real one records how long each
`buildah build` and `buildah push` takes; the leg's overhead is the scripts' time less those.

Needs act, buildah, skopeo, docker-registry, htpasswd and root, as tests/e2e does.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "generator")]
from clusterimg.runner import parse_outputs  # noqa: E402
from fake_github import FakeGitHub  # noqa: E402
from helpers import copy_action, git, loopback_registry  # noqa: E402

TOKEN = "ghs_" + "7" * 36
STEP = re.compile(r"Success - Main Plan \[([0-9.]+)(ms|s)\]")
ACTION_FILES = ("action.yml", "plan", "manifest", "lock", "scripts", "templates", "generator", "pyproject.toml",
                "requirements")
PLAN_TARGET, LEG_TARGET = 5.0, 1.0
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}[os.uname().machine]  # a leg builds its runner's own arch
# Two contexts that embed no images, each with a binary that the deep check reads: one without images/shim, manifests
# or charts, as most are; one whose manifests name no image, which the leg must read to know.
KUBEFILE = 'FROM scratch\nCOPY . .\nCMD ["kubectl apply -f manifests"]\n'
LEG_CONTEXTS = {
    "no images/shim, manifests or charts": {"Kubefile": KUBEFILE, "etc/tool.yaml": "replicas: 1\n"},
    "manifests naming no image": {"Kubefile": KUBEFILE, "manifests/cm.yaml": "kind: ConfigMap\ndata: {a: b}\n"},
}
# buildah, timing its build and push into the file LOG; every other command is the real one's.
SHIM = """#!/bin/sh
case $1 in
build | push)
  start=$(date +%s%N)
  status=0
  "{real}" "$@" || status=$?
  echo "$1 $(($(date +%s%N) - start))" >>"{log}"
  exit $status
  ;;
esac
exec "{real}" "$@"
"""


def export(rev: str | None, dest: Path) -> Path:
    """The action files of `rev` (or of the work tree for None) into dest."""
    if rev is None:
        return copy_action(dest)
    paths = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "--name-only", rev], capture_output=True, text=True,
                           check=True).stdout.split()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev,
                              *[p for p in ACTION_FILES if p in paths]], capture_output=True, check=True).stdout
    dest.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if not found:
        raise SystemExit(f"{name} not found on PATH; run tests/setup.sh")
    return found


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s ({min(values):.2f}–{max(values):.2f}, n={len(values)})"


# --- the plan step under act --------------------------------------------------------------------------------------


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
    git(repo, "remote", "add", "origin", "https://github.com/acme/images.git")  # act's GITHUB_REPOSITORY
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
        [tool("act"), event, "-j", "plan", "-W", ".github/workflows/clusterimage.yml",
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


def plan_runs(sides: dict[str, str | None], runs: int, tmp: Path) -> dict[tuple[str, str], list[float]]:
    results: dict[tuple[str, str], list[float]] = {}
    with FakeGitHub() as gh:
        gh.token = TOKEN
        repos = {side: user_repo(tmp / "plan" / side, rev) for side, rev in sides.items()}
        for i in range(runs):
            for side, (repo, base) in repos.items():
                head = git(repo, "rev-parse", "HEAD")
                gh.runs[("acme/images", "clusterimage.yml")] = [
                    {"head_sha": base, "event": "push", "status": "success", "branch": "main"}
                ]
                events = {
                    "pull_request": {"pull_request": {"base": {"sha": base}, "head": {"sha": head}}},
                    "push": {"ref": "refs/heads/main", "before": base, "after": head},
                }
                for event, payload in events.items():
                    asked = len(gh.requests)
                    secs = plan_seconds(repo, event, payload, gh.url, tmp)
                    if event == "push" and not any(r.path.endswith("/runs") for r in gh.requests[asked:]):
                        raise SystemExit("the push plan did not look up its last successful run")
                    results.setdefault((event, side), []).append(secs)
                    print(f"plan run {i + 1}/{runs} {event:12} {side:7} {secs:6.2f} s", file=sys.stderr)
    return results


# --- one build leg ------------------------------------------------------------------------------------------------


def leg(action: Path, context: Path, image: str, host: str, user: str, password: str, bindir: Path, temp: Path
        ) -> dict[str, float]:
    """Run the build action's steps as action.yml does; returns each script's seconds."""
    arch = ARCH
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CIMG_", "RUNNER_", "REGISTRY_"))}
    # The interpreter itself, as a runner's python3 is: a version manager's shim would add its own start-up to each
    # module the scripts run.
    base |= {"PATH": f"{bindir}:{os.environ['PATH']}", "GITHUB_ACTIONS": "true", "RUNNER_TEMP": str(temp),
             "CIMG_ACTION_PATH": str(action), "CIMG_PYTHON": os.path.realpath(sys.executable)}
    login = {"CIMG_REGISTRY": host, "CIMG_USERNAME": user, "CIMG_PASSWORD": password}
    times: dict[str, float] = {}

    def step(script: str, **env: str) -> dict[str, str]:
        output = temp / f"{script}.output"
        output.touch()
        start = time.perf_counter()
        proc = subprocess.run(["bash", str(action / "scripts" / script)],
                              env=base | {"GITHUB_OUTPUT": str(output)} | env, capture_output=True, text=True)
        times[script] = time.perf_counter() - start
        if proc.returncode:
            raise SystemExit(f"{script} failed:\n{proc.stdout}{proc.stderr}")
        return parse_outputs(output.read_text())

    step("install.sh", CIMG_ARCH=arch, CIMG_BUILDER="buildah", CIMG_TOOLS="system", CIMG_RETRIES="3")
    name, version = image.rsplit(":", 1)
    prepared = step("prepare.sh", CIMG_ARCH=arch, CIMG_CONTEXT=str(context), CIMG_FILE="", CIMG_IMAGE=name,
                    CIMG_APP="", CIMG_VERSION=version, CIMG_PREPARE="true", CIMG_SETUP="")
    where = {"CIMG_CONTEXT": prepared["context"], "CIMG_ARCH": arch, "CIMG_TLS_VERIFY": "false", "CIMG_IMAGE": name}
    step("images.sh", **where, **login)
    saved = step("save.sh", **where, **login, CIMG_RETRIES="3")
    built = step("build.sh", **where, **login, CIMG_BUILDER="buildah", CIMG_FILE=prepared["file"],
                 CIMG_VERSION=version, CIMG_BUILD_ARGS="", CIMG_TIMESTAMP="1700000000", CIMG_INPUTS="ab" * 32,
                 CIMG_SAVED="true", CIMG_EMBEDDED=saved.get("images", ""), CIMG_PARENTS="")
    step("push.sh", **login, CIMG_REF=built["image"], CIMG_TLS_VERIFY="false", CIMG_RETRIES="3")
    return times


def leg_runs(sides: dict[str, str | None], runs: int, tmp: Path) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """(context, side) → (seconds in the scripts, seconds in buildah build and push) of each run."""
    contexts = {}
    for n, (what, files) in enumerate(LEG_CONTEXTS.items()):
        contexts[what] = context = tmp / f"leg/context-{n}"
        for rel, text in files.items():
            (context / rel).parent.mkdir(parents=True, exist_ok=True)
            (context / rel).write_text(text)
        (context / "opt").mkdir()
        shutil.copy2(shutil.which("true") or "/bin/true", context / "opt/tool")
    bindir, timings = tmp / "leg/bin", tmp / "leg/buildah-times"
    bindir.mkdir()
    (bindir / "buildah").write_text(SHIM.format(real=tool("buildah"), log=timings))
    (bindir / "buildah").chmod(0o755)
    actions = {side: export(rev, tmp / "leg/action" / side) for side, rev in sides.items()}
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    user, password = "bench", secrets.token_hex(12)
    (tmp / "leg/registry").mkdir()
    with loopback_registry(tmp / "leg/registry", user, password) as host:
        for i in range(-1, runs):  # run 0 warms the image store and the registry, and is not counted
            for n, (what, context) in enumerate(contexts.items()):
                for side, action in actions.items():
                    image = f"{host}/bench/leg-{n}-{side}:v{i + 1}"
                    temp = Path(tempfile.mkdtemp(dir=tmp))
                    timings.write_text("")
                    times = leg(action, context, image, host, user, password, bindir, temp)
                    inside = sum(int(line.split()[1]) for line in timings.read_text().splitlines()) / 1e9
                    subprocess.run(["buildah", "rmi", f"{image}-{ARCH}"], capture_output=True, check=False)
                    shutil.rmtree(temp, ignore_errors=True)
                    if i < 0:
                        continue
                    total = sum(times.values())
                    results.setdefault((what, side), []).append((total, inside))
                    shown = " ".join(f"{k.removesuffix('.sh')} {v:.2f}" for k, v in times.items())
                    print(f"leg run {i + 1}/{runs} context {n} {side:7} outside {total - inside:5.2f} s of "
                          f"{total:5.2f} s ({shown})", file=sys.stderr)
    return results


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    rev = sys.argv[2] if len(sys.argv) > 2 else None
    sides: dict[str, str | None] = {"current": None}
    if rev:
        sides = {f"{rev[:7]}": rev, **sides}
    with tempfile.TemporaryDirectory() as tmp:
        plans = plan_runs(sides, runs, Path(tmp))
        legs = leg_runs(sides, runs, Path(tmp))
    print(f"Plan step under act, beyond checkout: median (range, runs); target <= {PLAN_TARGET:.0f} s")
    print("| event | " + " | ".join(sides) + " |")
    print("|---|" + "---:|" * len(sides))
    for event in ("pull_request", "push"):
        print(f"| {event} | " + " | ".join(spread(plans[(event, side)]) for side in sides) + " |")
    print(f"\nBuild leg for a context that embeds no images: time outside buildah build and push, median (range, "
          f"runs); target <= {LEG_TARGET:.0f} s")
    print("| context | " + " | ".join(sides) + " | build and push |")
    print("|---|" + "---:|" * (len(sides) + 1))
    for what in LEG_CONTEXTS:
        outside = [spread([t - i for t, i in legs[(what, side)]]) for side in sides]
        inside = spread([i for side in sides for _, i in legs[(what, side)]])
        print(f"| {what} | " + " | ".join(outside) + f" | {inside} |")


if __name__ == "__main__":
    main()
