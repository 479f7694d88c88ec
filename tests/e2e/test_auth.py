"""A login leaves no credentials on the runner: each script that logs in uses an auth file of its own step, under
RUNNER_TEMP, and removes it when it ends, whether it succeeds or fails. A REGISTRY_AUTH_FILE the caller set is kept."""

import base64
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from clusterimg.paths import scripts_dir

pytestmark = pytest.mark.e2e

NOBODY = 65534


def stored(registry) -> bytes:
    """How an auth file holds this registry's credentials."""
    return base64.b64encode(f"{registry.username}:{registry.password}".encode())


def holding(root: Path, registry) -> list[str]:
    """Files under root that hold the registry's credentials."""
    found = []
    for path in root.rglob("*"):
        if path.is_file() and (stored(registry) in path.read_bytes() or registry.password.encode() in path.read_bytes()):
            found.append(str(path.relative_to(root)))
    return found


@pytest.fixture
def runner_dirs(tmp_path, monkeypatch) -> Path:
    """A runner's RUNNER_TEMP, and the runtime dir where container tools keep a login by default; no auth file set."""
    for name in ("runner-temp", "runtime"):
        (tmp_path / name).mkdir()
    monkeypatch.delenv("REGISTRY_AUTH_FILE")
    monkeypatch.setenv("RUNNER_TEMP", str(tmp_path / "runner-temp"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "runtime"))
    return tmp_path


def script(name: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(scripts_dir() / name)], env={**os.environ, **env}, capture_output=True,
                          text=True)  # fmt: skip


def local_image(ref: str) -> None:
    """An empty image in local storage, made without any login."""
    env = {k: v for k, v in os.environ.items() if k != "REGISTRY_AUTH_FILE"}
    container = subprocess.run(["buildah", "from", "scratch"], capture_output=True, text=True, env=env, check=True)
    for cmd in (["commit", "--quiet", container.stdout.strip(), ref], ["rm", container.stdout.strip()]):
        subprocess.run(["buildah", *cmd], capture_output=True, env=env, check=True)


def login_env(registry) -> dict[str, str]:
    return {"CIMG_REGISTRY": registry.host, "CIMG_USERNAME": registry.username, "CIMG_PASSWORD": registry.password,
            "CIMG_TLS_VERIFY": "false", "CIMG_RETRIES": "1"}  # fmt: skip


def test_a_push_leaves_no_credentials_on_the_runner(runner_dirs, creds, image):
    local_image(f"{image}:v1-amd64")

    proc = script("push.sh", login_env(creds) | {"CIMG_REF": f"{image}:v1-amd64"})

    assert proc.returncode == 0, proc.stderr
    assert f"logged in to {creds.host}" in proc.stderr
    assert creds.has(f"{image}:v1-amd64")
    assert holding(runner_dirs, creds) == []


def test_a_fan_in_that_fails_after_its_login_leaves_no_credentials_on_the_runner(runner_dirs, creds, image):
    proc = script("manifest.sh", login_env(creds) | {"CIMG_IMAGE": image, "CIMG_VERSION": "v1", "CIMG_ARCHES": "amd64"})

    assert proc.returncode == 1
    assert f"logged in to {creds.host}" in proc.stderr and "not published" in proc.stderr
    assert holding(runner_dirs, creds) == []


def test_a_login_goes_to_the_auth_file_the_caller_set_and_stays_there(runner_dirs, creds, image, monkeypatch):
    authfile = runner_dirs / "callers-auth.json"
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(authfile))
    local_image(f"{image}:v1-amd64")

    proc = script("push.sh", login_env(creds) | {"CIMG_REF": f"{image}:v1-amd64"})

    assert proc.returncode == 0, proc.stderr
    assert holding(runner_dirs, creds) == ["callers-auth.json"]


def test_the_embedded_images_check_logs_in_under_runner_temp_and_leaves_no_credentials(
    runner_dirs, creds, image, fakes, tmp_path
):
    context = tmp_path / "ctx"
    (context / "images/shim").mkdir(parents=True)
    (context / "images/shim/List").write_text(f"{image}:absent\n")
    gen = tmp_path / "clusterimg-gen"
    gen.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m clusterimg "$@"\n')
    gen.chmod(0o755)
    argv_log = tmp_path / "argv.log"

    proc = script("images.sh", login_env(creds) | {
        "PATH": f"{fakes / 'argv_log'}{os.pathsep}{os.environ['PATH']}", "ARGV_LOG": str(argv_log),
        "CIMG_GEN": str(gen), "CIMG_ACTION_PATH": str(scripts_dir().parent), "CIMG_CONTEXT": str(context),
        "CIMG_ARCH": "amd64", "CIMG_IMAGE": image,
    })  # fmt: skip

    assert "1 image × arch pair(s) missing" in proc.stderr, proc.stderr
    [login] = [c for c in map(shlex.split, argv_log.read_text().splitlines()) if c[:2] == ["skopeo", "login"]]
    assert Path(login[login.index("--authfile") + 1]).is_relative_to(runner_dirs / "runner-temp")
    assert holding(runner_dirs, creds) == []


@pytest.fixture
def nobodys(tmp_path_factory):
    """A directory that user nobody may use: pytest's own are for root alone."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to run a script as another user")
    root = Path(tempfile.mkdtemp(prefix="clusterimg-nobody-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root)


def test_the_plan_logs_in_as_a_user_without_a_runtime_dir_and_leaves_no_credentials(nobodys, creds, fakes):
    # A runner's plan job: not root, no XDG_RUNTIME_DIR, so a default login would go to /run/containers/<uid>.
    for name in ("home", "runner-temp"):
        (nobodys / name).mkdir()
    (nobodys / "output").touch()
    subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(nobodys)], check=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(nobodys / "home"), "RUNNER_TEMP": str(nobodys / "runner-temp"),
           "GITHUB_OUTPUT": str(nobodys / "output"), "CIMG_ACTION_PATH": str(scripts_dir().parent / "plan"),
           "CIMG_GEN": str(fakes / "registry_lookup" / "clusterimg-gen"), "CIMG_EVENT": "workflow_dispatch",
           "CIMG_RETRY_DELAY": "0"} | login_env(creds)  # fmt: skip

    proc = subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "bash", str(scripts_dir() / "plan.sh")],
        env=env, capture_output=True, text=True,
    )  # fmt: skip

    assert proc.returncode == 0, proc.stderr
    assert (nobodys / "output").read_text() == "matrices={}\n"
    assert holding(nobodys, creds) == []
