"""Plain helpers the tests import by name (fixtures live in conftest.py)."""

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden"
KUBEFILE = 'FROM scratch\nCOPY manifests ./manifests\nCMD ["kubectl apply -f manifests"]\n'


def tool(name: str) -> str:
    """The path of a tool that tests/setup.sh installs; a missing one fails the test, it never skips it."""
    path = shutil.which(name)
    assert path, f"{name} is not on PATH; run tests/setup.sh (make test does)"
    return path


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        check=True, capture_output=True, text=True,
    ).stdout.strip()


def committed(repo: Path) -> Path:
    """Make `repo` a git repository with everything in one commit."""
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    return repo


def copy_action(dest: Path) -> Path:
    """This repository's action files (tracked or new, not tests, examples or CI) copied to `dest`."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True, text=True, check=True,
    ).stdout.split("\0")
    for rel in listed:
        if rel and not rel.startswith(("tests/", "examples/", ".github/")) and (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    return dest


def copy_scenario(name: str, dest: Path) -> tuple[Path, list[str]]:
    src = GOLDEN / name
    repo = dest / name
    shutil.copytree(src / "repo", repo)
    args_file = src / "args"
    return repo, args_file.read_text().split() if args_file.exists() else []


def big_tree(root: Path, n: int) -> Path:
    """A zero-config tree of n app-versions, ten per app."""
    files = {"clusterimage.yaml": "repository: acme\n"}
    for i in range(n):
        files[f"applications/app{i // 10:03d}/v1.{i % 10}.0/Kubefile"] = KUBEFILE
    return write_tree(root, files)


@contextlib.contextmanager
def loopback_registry(root: Path, username: str, password: str, *, log=subprocess.DEVNULL):
    """A docker-registry on 127.0.0.1 with htpasswd (bcrypt) auth, storing under root; yields its host:port."""
    htpasswd = subprocess.run(["htpasswd", "-Bbn", username, password], capture_output=True, text=True, check=True)
    (root / "htpasswd").write_text(htpasswd.stdout)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = {
        "version": "0.1",
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)},
        "auth": {"htpasswd": {"realm": "loopback", "path": str(root / "htpasswd")}},
    }
    (root / "config.yml").write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}  # the registry reads these as config
    proc = subprocess.Popen(["docker-registry", "serve", str(root / "config.yml")], stdout=log, stderr=log, env=env)
    try:
        wait_http(f"http://127.0.0.1:{port}/v2/", proc)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def wait_http(url: str, proc: subprocess.Popen | None = None, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc and proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # 401: up, and asking for credentials
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up in {timeout}s")
