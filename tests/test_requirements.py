"""The runner installs clusterimg-gen's imports from hashed locks this repository keeps, and nothing else."""

import os
import re
import subprocess
import sys
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from helpers import ROOT, write_tree

REQUIREMENTS = ROOT / "requirements"
PIN = re.compile(r"^([A-Za-z0-9._-]+)==(\S+) \\\n((?:    --hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)", re.M)
SECRETS = {"CIMG_PASSWORD": "pw-secret", "CIMG_USERNAME": "user-secret", "CIMG_TOKEN": "tok-secret",
           "GITHUB_TOKEN": "gh-secret", "REGISTRY_PASSWORD": "reg-secret"}


def pins(name: str) -> dict[str, tuple[str, set[str]]]:
    """{package: (version, sha256 hashes)} of requirements/<name>.txt; every requirement line must be a hashed pin."""
    text = (REQUIREMENTS / f"{name}.txt").read_text()
    found = {canonicalize_name(n): (v, set(re.findall(r"sha256:([0-9a-f]{64})", h))) for n, v, h in PIN.findall(text)}
    requirement_lines = [line for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    assert len(requirement_lines) == len(found), f"{name}.txt has a requirement that is not an exact, hashed pin"
    return found


@pytest.mark.parametrize("name", ["runner", "render", "github", "release", "evidence"])
def test_each_lock_pins_exact_versions_with_sha256_hashes(name):
    locked = pins(name)
    assert locked
    for package, (version, hashes) in locked.items():
        assert re.fullmatch(r"[0-9][0-9A-Za-z.+-]*", version), package
        assert hashes, package


def test_the_runner_lock_holds_exactly_what_planning_imports_and_every_dependency_is_locked():
    assert set(pins("runner")) == {"pyyaml", "click"}
    assert set(pins("render")) == {"jinja2", "markupsafe"}
    assert "ghapi" in pins("github")
    runner, render, github = (set(pins(name)) for name in ("runner", "render", "github"))
    assert not runner & render and not runner & github and not render & github
    locked = {**pins("runner"), **pins("render"), **pins("github")}
    for dep in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        req = Requirement(dep)
        name = canonicalize_name(req.name)
        assert name in locked, f"{req.name} is a dependency but in no lock; run: make requirements"
        assert req.specifier.contains(locked[name][0]), f"{name}=={locked[name][0]} does not satisfy {dep}"


def download(locks: list[str], python: str, arch: str, dest) -> subprocess.CompletedProcess:
    """pip checks each download against the lock's hashes, as on a runner of that Python and arch (from PyPI)."""
    tag = "cp" + python.replace(".", "")
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_FIND_LINKS": "", "PIP_EXTRA_INDEX_URL": ""}
    return subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--index-url",
         "https://pypi.org/simple", "--require-hashes", "--no-deps", "--only-binary=:all:", "--platform",
         f"manylinux2014_{arch}", "--python-version", python, "--implementation", "cp", "--abi", tag,
         *[arg for lock in locks for arg in ("-r", str(REQUIREMENTS / f"{lock}.txt"))], "-d", str(dest)],
        capture_output=True, text=True, env=env,
    )  # fmt: skip


@pytest.mark.parametrize("python", ["3.10", "3.11", "3.12", "3.13"])
@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_the_runner_lock_has_a_wheel_with_a_locked_hash_for_each_runner_python(tmp_path, python, arch):
    tag = "cp" + python.replace(".", "")
    proc = download(["runner", "render"], python, arch, tmp_path)
    assert proc.returncode == 0, proc.stderr
    wheels = sorted(p.name for p in tmp_path.iterdir())
    assert len(wheels) == 4
    assert [w for w in wheels if w.startswith(("pyyaml", "markupsafe"))] == [
        w for w in wheels if f"-{tag}-{tag}-" in w and arch in w
    ]


@pytest.mark.parametrize("python", ["3.10", "3.12"])  # ubuntu-22.04's and ubuntu-24.04's python3
@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_the_evidence_lock_has_a_wheel_with_a_locked_hash_for_each_runner_python(tmp_path, python, arch):
    """scripts/evidence.sh installs sigstore from this lock, binary wheels only, on the runner's own python3."""
    proc = download(["evidence"], python, arch, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len(list(tmp_path.iterdir())) == len(pins("evidence"))


def run_venv(tmp_path, *extras: str, env: dict | None = None, then: str = "--version") -> subprocess.CompletedProcess:
    """scripts/lib.sh's clusterimg_gen_venv as plan.sh runs it, then `clusterimg-gen <then>`."""
    script = f'source scripts/lib.sh; clusterimg_gen_venv . {" ".join(extras)}; "$CIMG_GEN" {then}'
    env = {**os.environ, "RUNNER_TEMP": str(tmp_path), **(env or {})}
    env.pop("CIMG_GEN", None)
    return subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, env=env)


def test_a_fresh_venv_from_the_runner_lock_runs_clusterimg_gen_and_holds_nothing_else(tmp_path):
    proc = run_venv(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("clusterimg-gen, version ")
    venv = tmp_path / "clusterimg-gen-venv"
    listed = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin/python"), "list",
                             "--format", "freeze", "--disable-pip-version-check"], capture_output=True, text=True)
    installed = {canonicalize_name(line.split("==")[0]): line.split("==")[1] for line in listed.stdout.split()}
    assert installed == {name: version for name, (version, _) in pins("runner").items()}
    # The package itself is this checkout, on a path entry: nothing of it was built or copied.
    (pth,) = venv.glob("lib/python*/site-packages/clusterimg.pth")
    assert pth.read_text() == str(ROOT / "generator")
    # That is all planning and listing images need.
    repo = write_tree(tmp_path / "repo", {"clusterimage.yaml": "repository: acme\n",
                                          "applications/calico/v1/Kubefile": "FROM scratch\n",
                                          "applications/calico/v1/images/shim/list": "docker.io/calico/cni:v1\n"})
    planned = run_venv(tmp_path, then=f"plan --repo {repo} --format github")
    assert planned.returncode == 0 and '"app":"calico"' in planned.stdout.replace(" ", ""), planned.stderr
    listed = run_venv(tmp_path, then=f"images {repo}/applications/calico/v1 --format save")
    assert listed.returncode == 0 and "docker://docker.io/calico/cni:v1" in listed.stdout, listed.stderr


def test_the_venv_is_reused_until_a_lock_changes_and_the_lock_refresh_adds_rendering_and_the_api_client(tmp_path):
    assert run_venv(tmp_path).returncode == 0
    venv = tmp_path / "clusterimg-gen-venv"
    marker = venv / "kept"
    marker.write_text("")
    assert run_venv(tmp_path).returncode == 0
    assert marker.exists()
    stamp = venv / ".stamp"
    stamp.write_text("a lock of another version\n")
    assert run_venv(tmp_path).returncode == 0
    assert not marker.exists()
    proc = run_venv(tmp_path, "render", "github")
    assert proc.returncode == 0, proc.stderr
    probe = subprocess.run([str(tmp_path / "clusterimg-gen-venv-render-github/bin/python"), "-c",
                            "import ghapi, jinja2, yaml"])  # fmt: skip
    assert probe.returncode == 0


def test_a_venv_from_the_evidence_lock_signs_with_sigstore_and_runs_the_evidence_module(tmp_path):
    proc = run_venv(tmp_path, "evidence")
    assert proc.returncode == 0, proc.stderr
    probe = subprocess.run([str(tmp_path / "clusterimg-gen-venv-evidence/bin/python"), "-c",
                            "import sigstore.sign, clusterimg.evidence"], capture_output=True, text=True)  # fmt: skip
    assert probe.returncode == 0, probe.stderr


def test_no_secret_reaches_pip_or_the_venv_it_fills(tmp_path):
    """A python3 first on PATH logs the environment of every call the install makes."""
    log = tmp_path / "env.log"
    real = subprocess.run(["bash", "-c", "command -v python3"], capture_output=True, text=True).stdout.strip()
    fake = write_tree(tmp_path / "fake", {"python3": f'#!/bin/sh\nenv >> "{log}"\nexec "{real}" "$@"\n'})
    (fake / "python3").chmod(0o755)
    proc = run_venv(tmp_path / "runner", env={**SECRETS, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"})
    assert proc.returncode == 0, proc.stderr
    seen = log.read_text()
    assert seen.count("PATH=") >= 2  # the venv and the install both went through it
    for name, value in SECRETS.items():
        assert value not in seen, name
