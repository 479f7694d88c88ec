"""scripts/mirror.sh against two loopback registries with different credentials: the copy keeps every digest."""

import hashlib
import json
import secrets
import shlex
import socket
import subprocess

import pytest

from clusterimg import runner
from clusterimg.errors import StepFailed

pytestmark = pytest.mark.e2e


def raw(authfile, ref: str) -> bytes:
    return subprocess.run(["skopeo", "inspect", "--authfile", str(authfile), "--tls-verify=false", "--raw",
                           f"docker://{ref}"], capture_output=True, check=True).stdout


def closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def mirror(image, digest, target, username, password, **env):
    return runner.run("mirror.sh", {
        "CIMG_IMAGE": image, "CIMG_VERSION": "v1", "CIMG_DIGEST": digest, "CIMG_TLS_VERIFY": "false",
        "CIMG_USERNAME": username, "CIMG_PASSWORD": password, "CIMG_MIRROR": target,
        "CIMG_MIRROR_TLS_VERIFY": "false", "CIMG_RETRIES": "2", **env,
    })  # fmt: skip


@pytest.fixture
def published(kubefile, image, creds):
    """image:v1 published on the primary as a two-arch list; yields its digest."""
    for arch in ("amd64", "arm64"):
        runner.build(kubefile, f"{image}:v1", arch, push=True, tls_verify=False, builder="buildah")
    return runner.manifest(f"{image}:v1", ["amd64", "arm64"], tls_verify=False)["digest"]


def test_mirror_holds_the_list_and_each_arch_image_under_the_primary_digests(
    published, image, creds, mirror_registry, capfd
):
    host, username, password, authfile = mirror_registry
    target = f"{host}/mirrored/{image.rsplit('/', 1)[1]}"

    out = mirror(image, published, target, creds.username, creds.password,
                 CIMG_MIRROR_USERNAME=username, CIMG_MIRROR_PASSWORD=password)

    assert out == {"image": f"{target}:v1", "digest": published}
    copied = raw(authfile, f"{target}:v1")
    assert copied == creds.raw(f"{image}:v1")
    assert "sha256:" + hashlib.sha256(copied).hexdigest() == published
    for entry in json.loads(copied)["manifests"]:
        child = raw(authfile, f"{target}@{entry['digest']}")
        assert "sha256:" + hashlib.sha256(child).hexdigest() == entry["digest"]
    logged = capfd.readouterr()
    assert password not in logged.out + logged.err and creds.password not in logged.out + logged.err


def test_the_mirror_password_reaches_the_login_on_stdin_only(
    published, image, creds, mirror_registry, fakes, on_path, tmp_path, monkeypatch
):
    host, username, password, _ = mirror_registry
    argv_log = tmp_path / "argv.log"
    monkeypatch.setenv("ARGV_LOG", str(argv_log))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "auth.json"))
    on_path(fakes / "argv_log")

    mirror(image, published, f"{host}/argv/app", creds.username, creds.password,
           CIMG_MIRROR_USERNAME=username, CIMG_MIRROR_PASSWORD=password)

    calls = [shlex.split(line) for line in argv_log.read_text().splitlines()]
    logins = [c for c in calls if c[:2] == ["buildah", "login"]]
    assert [c[-1] for c in logins] == [creds.host, host]
    assert all("--password-stdin" in c for c in logins)
    assert password not in argv_log.read_text() and creds.password not in argv_log.read_text()


def test_a_mirror_that_is_down_fails_naming_it_and_leaves_the_primary_untouched(published, image, creds):
    down = closed_port()
    before = creds.raw(f"{image}:v1")

    with pytest.raises(StepFailed, match=rf"login to {down} as nobody failed"):
        mirror(image, published, f"{down}/acme/app", creds.username, creds.password,
               CIMG_MIRROR_USERNAME="nobody", CIMG_MIRROR_PASSWORD="nothing")

    assert creds.raw(f"{image}:v1") == before


def test_a_mirror_that_refuses_the_credentials_fails_naming_it(published, image, creds, mirror_registry):
    host, username, _, authfile = mirror_registry

    with pytest.raises(StepFailed, match=rf"login to {host} as {username} failed"):
        mirror(image, published, f"{host}/refused/app", creds.username, creds.password,
               CIMG_MIRROR_USERNAME=username, CIMG_MIRROR_PASSWORD="wrong-" + secrets.token_hex(4))

    listed = subprocess.run(["skopeo", "inspect", "--authfile", str(authfile), "--tls-verify=false", "--raw",
                             f"docker://{host}/refused/app:v1"], capture_output=True)
    assert listed.returncode != 0


def test_a_digest_that_is_not_a_list_is_refused_before_any_copy(published, image, creds, mirror_registry):
    host, username, password, _ = mirror_registry
    arch_digest = json.loads(creds.raw(f"{image}:v1"))["manifests"][0]["digest"]

    with pytest.raises(StepFailed, match=r"is not a manifest list"):
        mirror(image, arch_digest, f"{host}/single/app", creds.username, creds.password,
               CIMG_MIRROR_USERNAME=username, CIMG_MIRROR_PASSWORD=password)
