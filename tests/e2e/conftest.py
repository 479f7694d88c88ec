"""Real buildah, skopeo and a loopback docker-registry with htpasswd auth; no mocks below the scripts."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import secrets
import subprocess
import threading
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
from helpers import loopback_registry, tool

TOOLS = ("buildah", "skopeo", "docker-registry", "htpasswd")


@dataclass(frozen=True)
class Registry:
    host: str
    username: str
    password: str
    authfile: Path  # the tests' own login, kept apart from the one the scripts make

    def skopeo(self, verb: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = ["skopeo", verb, "--authfile", str(self.authfile), "--tls-verify=false", *args]
        return subprocess.run(cmd, capture_output=True, check=check)

    def raw(self, ref: str) -> bytes:
        return self.skopeo("inspect", "--raw", f"docker://{ref}").stdout

    def config(self, ref: str) -> dict:
        return json.loads(self.skopeo("inspect", "--raw", "--config", f"docker://{ref}").stdout)

    def has(self, ref: str) -> bool:
        return self.skopeo("inspect", "--raw", f"docker://{ref}", check=False).returncode == 0


@pytest.fixture(scope="session")
def tools():
    for name in TOOLS:
        tool(name)


@pytest.fixture(scope="session", autouse=True)
def isolated_env(tmp_path_factory):
    """Every script in this test run logs in to its own auth file and backs off for 0s unless a test says otherwise."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REGISTRY_AUTH_FILE", str(tmp_path_factory.mktemp("auth") / "auth.json"))
        mp.setenv("CIMG_RETRY_DELAY", "0")
        for var in ("GITHUB_ACTIONS", "GITHUB_OUTPUT", "GITHUB_PATH", "GITHUB_STEP_SUMMARY", "REGISTRY_USERNAME"):
            mp.delenv(var, raising=False)
        mp.delenv("REGISTRY_PASSWORD", raising=False)
        yield


@pytest.fixture(scope="session")
def registry(tools, tmp_path_factory) -> Registry:
    root = tmp_path_factory.mktemp("registry")
    username, password = "ci", "pw-" + secrets.token_hex(12)
    dangling_before = local_images("--filter", "dangling=true")
    with (root / "registry.log").open("w") as log, loopback_registry(root, username, password, log=log) as host:
        reg = Registry(host, username, password, root / "tests-auth.json")
        subprocess.run(
            ["skopeo", "login", "--authfile", str(reg.authfile), "--tls-verify=false",
             "--username", username, "--password-stdin", reg.host],
            input=password, capture_output=True, text=True, check=True,
        )  # fmt: skip
        try:
            yield reg
        finally:
            # Every image this run built is named after its registry; rebuilt tags leave dangling ones behind.
            remove_local(f"{host}/")
            leftover = local_images("--filter", "dangling=true") - dangling_before
            if leftover:
                subprocess.run(["buildah", "rmi", "-f", *leftover], capture_output=True, check=False)


@dataclass(frozen=True)
class Public:
    host: str
    ca_bundle: Path  # the system's CAs and this registry's: SSL_CERT_FILE for every tool that must verify it


@pytest.fixture(scope="session")
def public_registry(tools, tmp_path_factory) -> Public:
    """An upstream registry anyone may pull from over verified HTTPS, as docker.io and quay.io are for embedded
    images: its certificate is made here, and SSL_CERT_FILE=ca_bundle makes the tools trust it."""
    root = tmp_path_factory.mktemp("public")
    cert, key = root / "cert.pem", root / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   capture_output=True, check=True)  # fmt: skip
    system = Path("/etc/ssl/certs/ca-certificates.crt")
    bundle = root / "ca-bundle.pem"
    bundle.write_text((system.read_text() if system.exists() else "") + cert.read_text())
    with (root / "registry.log").open("w") as log, loopback_registry(root, None, None, log=log, tls=(cert, key)) as host:
        try:
            yield Public(host, bundle)
        finally:
            remove_local(f"{host}/")


@pytest.fixture(scope="session")
def mirror_registry(tools, tmp_path_factory):
    """A second registry, with a user and password of its own; yields (host, username, password, authfile)."""
    root = tmp_path_factory.mktemp("mirror-registry")
    username, password = "mirror", "mirror-pw-" + secrets.token_hex(12)
    with loopback_registry(root, username, password) as host:
        authfile = root / "tests-auth.json"
        subprocess.run(
            ["skopeo", "login", "--authfile", str(authfile), "--tls-verify=false", "--username", username,
             "--password-stdin", host],
            input=password, capture_output=True, text=True, check=True,
        )
        yield host, username, password, authfile


@pytest.fixture
def creds(registry, monkeypatch) -> Registry:
    monkeypatch.setenv("REGISTRY_USERNAME", registry.username)
    monkeypatch.setenv("REGISTRY_PASSWORD", registry.password)
    return registry


@pytest.fixture
def image(request, registry):
    """A repository name unique to this test; its local images are removed afterwards."""
    repo = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:60]
    name = f"{registry.host}/e2e/{repo}-{secrets.token_hex(3)}"
    yield name
    remove_local(name + ":")


def local_images(*args: str, form: str = "{{.ID}}") -> set[str]:
    cmd = ["buildah", "images", "--noheading", "--format", form, *args]
    return set(subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.split())


def remove_local(prefix: str) -> None:
    """Remove local images whose name starts with prefix: a repository and ':', or a registry and '/'."""
    refs = sorted(r for r in local_images(form="{{.Name}}:{{.Tag}}") if r.startswith(prefix))
    if refs:
        subprocess.run(["buildah", "rmi", "-f", *refs], capture_output=True, check=False)


@pytest.fixture
def kubefile(tmp_path) -> Path:
    """A FROM scratch cluster image context, the common shape of an app image."""
    ctx = tmp_path / "ctx"
    (ctx / "manifests").mkdir(parents=True)
    (ctx / "manifests" / "app.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: e2e\n")
    (ctx / "Kubefile").write_text('FROM scratch\nCOPY manifests ./manifests\nCMD ["kubectl apply -f manifests"]\n')
    return ctx


@pytest.fixture
def fakes() -> Path:
    """Clearly named test doubles: each is a script that stands in for one tool."""
    return Path(__file__).parent / "fakes"


@pytest.fixture
def on_path(monkeypatch):
    """Put a directory first on PATH for this test."""

    def put(directory: Path) -> None:
        monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")

    return put


@pytest.fixture
def hide(tmp_path):
    """`with hide(tool):` runs its body with each PATH directory that holds tool swapped for links to the rest."""

    @contextlib.contextmanager
    def without(tool: str):
        path = []
        for i, directory in enumerate(os.environ["PATH"].split(os.pathsep)):
            if not os.path.exists(os.path.join(directory, tool)):
                path.append(directory)
                continue
            farm = tmp_path / f"without-{tool}-{i}"
            farm.mkdir()
            for exe in Path(directory).iterdir():
                if exe.name != tool:
                    (farm / exe.name).symlink_to(exe)
            path.append(str(farm))
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("PATH", os.pathsep.join(path))
            yield

    return without


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def download_server(tmp_path):
    """Serves a directory over loopback HTTP; yields (directory, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
