"""The save step against real registries: a labring-style context saved, then built with buildah, for each arch."""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from clusterimg import runner
from clusterimg.cli import main
from clusterimg.paths import scripts_dir
from helpers import push_two_arch, write_tree

pytestmark = pytest.mark.e2e
ARCHES = ("amd64", "arm64")


@dataclass(frozen=True)
class Upstream:
    both: str  # a manifest list of linux/amd64 and linux/arm64
    tool: str  # a second multi-arch image, named in a manifest rather than the shim list
    amd64_list: str  # a manifest list whose one entry is linux/amd64
    amd64_single: str  # a single linux/amd64 image, no list


def buildah(*args: str, authfile: Path) -> str:
    env = {**os.environ, "REGISTRY_AUTH_FILE": str(authfile)}  # the tests' own login
    proc = subprocess.run(["buildah", *args], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, f"buildah {shlex.join(args)}: {proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def upstream(registry, tmp_path_factory) -> Iterator[Upstream]:
    """Images built here for both arches (FROM scratch with one file, so no emulation), pushed to the loopback."""
    repo = f"{registry.host}/e2e/embedded-{secrets.token_hex(3)}"
    out = Upstream(f"{repo}/app:v1", f"{repo}/tool:v2", f"{repo}/app:amd64-list", f"{repo}/app:amd64-single")
    local, lists = [], []
    try:
        for name in ("app", "tool"):
            lists.append(f"localhost/{name}-list-{secrets.token_hex(3)}")
            buildah("manifest", "create", lists[-1], authfile=registry.authfile)
            for arch in ARCHES:
                ctx = write_tree(tmp_path_factory.mktemp("scratch"), {
                    "Containerfile": "FROM scratch\nCOPY arch /\n", "arch": f"{name} for {arch}\n"
                })  # fmt: skip
                local.append(f"{repo}/{name}:local-{arch}")
                buildah("build", "--platform", f"linux/{arch}", "-t", local[-1], str(ctx), authfile=registry.authfile)
                buildah("manifest", "add", lists[-1], f"containers-storage:{local[-1]}", authfile=registry.authfile)
        lists.append(f"localhost/amd64-list-{secrets.token_hex(3)}")
        buildah("manifest", "create", lists[-1], authfile=registry.authfile)
        buildah("manifest", "add", lists[-1], f"containers-storage:{repo}/app:local-amd64", authfile=registry.authfile)
        for src, dest in zip(lists, (out.both, out.tool, out.amd64_list)):
            buildah("manifest", "push", "--all", "--tls-verify=false", src, f"docker://{dest}",
                    authfile=registry.authfile)  # fmt: skip
        buildah("push", "--tls-verify=false", f"{repo}/app:local-amd64", f"docker://{out.amd64_single}",
                authfile=registry.authfile)  # fmt: skip
        yield out
    finally:
        for cmd in (["manifest", "rm", *lists], ["rmi", "-f", *local]):
            subprocess.run(["buildah", *cmd], capture_output=True, check=False)


def labring_context(root: Path, up: Upstream, shim: str) -> Path:
    """The shape of labring's app images: COPY registry with no registry/ committed, images listed in images/shim."""
    return write_tree(root, {
        "Kubefile": "FROM scratch\nCOPY registry ./registry\nCOPY manifests ./manifests\nCOPY images ./images\n"
                    'CMD ["kubectl apply -f manifests/tool.yaml"]\n',
        "images/shim/AppImageList": f"# embedded\n{shim}\n\n{shim}\n",
        # Not valid YAML: sealos reads it line by line, and so does the save step.
        "manifests/tool.yaml": f"spec:\n  containers: [\n    - name: tool\n      image: \"{up.tool}\"\n",
    })  # fmt: skip


def build(capsys, ctx: Path, image: str, arch: str, *extra: str) -> tuple[int, dict, str]:
    code = main(["build", str(ctx), "--image", f"{image}:v1", "--arch", arch, "--builder", "buildah",
                 "--no-tls-verify", *extra])  # fmt: skip
    out = capsys.readouterr()
    return code, json.loads(out.out) if code == 0 else {}, out.err


@pytest.fixture
def mounted():
    """`mounted(ref)` is the root of a working container of the local image ref; the containers go afterwards."""
    containers = []

    def mount(ref: str) -> Path:
        containers.append(subprocess.run(["buildah", "from", "--pull-never", ref], capture_output=True, text=True,
                                         check=True).stdout.strip())  # fmt: skip
        return Path(subprocess.run(["buildah", "mount", containers[-1]], capture_output=True, text=True,
                                   check=True).stdout.strip())  # fmt: skip

    yield mount
    if containers:
        subprocess.run(["buildah", "rm", *containers], capture_output=True, check=False)


def blob(v2: Path, digest: str) -> bytes:
    algorithm, hexdigest = digest.split(":")
    return (v2 / "blobs" / algorithm / hexdigest[:2] / hexdigest / "data").read_bytes()


def stored(v2: Path, repo: str, tag: str) -> tuple[str, dict, dict]:
    """What registry/ holds for repo:tag, read as distribution reads it: tag link → manifest → config."""
    digest = (v2 / "repositories" / repo / "_manifests/tags" / tag / "current/link").read_text()
    manifest = json.loads(blob(v2, digest))
    return digest, manifest, json.loads(blob(v2, manifest["config"]["digest"]))


def entry(registry, ref: str, arch: str) -> str:
    """The digest of `arch`'s entry in the upstream list."""
    index = json.loads(registry.raw(ref))
    return next(m["digest"] for m in index["manifests"] if m["platform"]["architecture"] == arch)


@pytest.mark.parametrize("arch", ARCHES)
def test_each_embedded_image_is_saved_then_built_into_registry_for_its_arch_only(
    capsys, tmp_path, creds, upstream, image, mounted, arch
):
    ctx = labring_context(tmp_path / "ctx", upstream, upstream.both)
    assert not (ctx / "registry").exists()

    code, out, err = build(capsys, ctx, image, arch)

    assert code == 0, err[-3000:]
    assert out["images"].splitlines() == sorted(
        f"{ref}@{entry(creds, ref, arch)}" for ref in (upstream.both, upstream.tool)
    )
    v2 = mounted(out["image"]) / "registry/docker/registry/v2"
    for ref in (upstream.both, upstream.tool):
        name, tag = ref.split("/", 1)[1].rsplit(":", 1)  # stored without its registry host
        digest, manifest, config = stored(v2, name, tag)
        assert (digest, config["architecture"], config["os"]) == (entry(creds, ref, arch), arch, "linux")
        assert "manifests" not in manifest  # the one platform, not the list
        assert sorted(p.name for p in (v2 / "repositories" / name / "_manifests/tags").iterdir()) == [tag]
    other = next(a for a in ARCHES if a != arch)
    saved_manifests = {p.name for p in (v2 / "blobs/sha256").glob("*/*")}
    assert entry(creds, upstream.both, other).split(":")[1] not in saved_manifests


@pytest.mark.parametrize(
    ("shape", "problem"),
    [("amd64_list", "has no linux/arm64 image"), ("amd64_single", "is a single linux/amd64 image, not linux/arm64")],
)
def test_an_upstream_image_without_arm64_fails_the_arm64_save_before_the_build_naming_it(
    capsys, tmp_path, creds, upstream, image, shape, problem
):
    ref = getattr(upstream, shape)
    ctx = labring_context(tmp_path / "ctx", upstream, f"{upstream.both}\n{ref}")

    code, _, err = build(capsys, ctx, image, "arm64")

    assert code == 1
    assert f"error: {ref} {problem}\n" in err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert errors[0] == f"error: {ref} {problem}" and len(errors) == 2
    # The save runs in the prepared copy of the context, after init.sh.
    assert re.fullmatch(r"error: save\.sh: embedded images of \S+/cimg-context\.\w+ not saved for linux/arm64; "
                        r"not building \(save-images: false skips this step\)", errors[1])
    assert f"build {image}" not in err  # build.sh never started
    name, tag = ref.split("/", 1)[1].rsplit(":", 1)
    assert not (ctx / "registry/docker/registry/v2/repositories" / name / "_manifests/tags" / tag).exists()


def test_tls_is_verified_unless_turned_off(capsys, tmp_path, creds, upstream, image, monkeypatch):
    ctx = labring_context(tmp_path / "ctx", upstream, upstream.both)
    monkeypatch.setenv("CIMG_RETRIES", "1")

    code = main(["build", str(ctx), "--image", f"{image}:v1", "--arch", "amd64", "--builder", "buildah",
                 "--retries", "1"])  # fmt: skip
    err = capsys.readouterr().err

    assert code == 1
    host = upstream.both.split("/", 1)[0]
    assert f"error: {upstream.both} could not be saved: TLS with {host} failed: " in err  # the loopback speaks HTTP


def test_a_context_that_embeds_nothing_builds_without_a_registry_dir(capsys, tmp_path, creds, image):
    ctx = write_tree(tmp_path / "ctx", {"Kubefile": "FROM scratch\nCOPY manifests ./manifests\n",
                                        "manifests/ns.yaml": "kind: Namespace\n"})  # fmt: skip

    code, out, err = build(capsys, ctx, image, "arm64")

    assert code == 0, err[-3000:]
    assert "embeds no images: nothing to save" in err
    assert "images" not in out and not (ctx / "registry").exists()


def test_an_archive_listed_in_tar_txt_is_saved_under_the_name_it_gives(capsys, tmp_path, creds, upstream, image,
                                                                       mounted):  # fmt: skip
    ctx = labring_context(tmp_path / "ctx", upstream, upstream.both)
    archive = ctx / "images/skopeo/app.tar"
    archive.parent.mkdir(parents=True)
    subprocess.run(["skopeo", "--override-arch", "arm64", "copy", "--authfile", str(creds.authfile),
                    "--src-tls-verify=false", f"docker://{upstream.both}", f"docker-archive:{archive}"],
                   capture_output=True, check=True)  # fmt: skip
    (archive.parent / "tar.txt").write_text("docker-archive:app.tar@offline/app:v1\n")

    code, out, err = build(capsys, ctx, image, "arm64")

    assert code == 0, err[-3000:]
    digest, _, config = stored(mounted(out["image"]) / "registry/docker/registry/v2", "offline/app", "v1")
    assert f"offline/app:v1@{digest}" in out["images"].splitlines()  # re-compressed, so not the upstream digest
    assert config["architecture"] == "arm64"


def test_a_committed_registry_dir_of_the_other_arch_refuses_the_push(capsys, tmp_path, creds, upstream, image):
    ctx = labring_context(tmp_path / "ctx", upstream, upstream.both)
    # registry/ filled for amd64, as a hand run of `sealos build --platform linux/amd64` leaves it, then committed.
    env = {**os.environ, "CIMG_CONTEXT": str(ctx), "CIMG_ARCH": "amd64", "CIMG_TLS_VERIFY": "false",
           "CIMG_IMAGE": image, "CIMG_GEN": str(tmp_path / "gen"), "CIMG_USERNAME": creds.username,
           "CIMG_PASSWORD": creds.password}  # fmt: skip
    (tmp_path / "gen").write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m clusterimg "$@"\n')
    (tmp_path / "gen").chmod(0o755)
    saved = subprocess.run(["bash", str(scripts_dir() / "save.sh")], env=env, capture_output=True, text=True)
    assert saved.returncode == 0, saved.stderr

    code, _, err = build(capsys, ctx, image, "arm64", "--no-save-images", "--push")

    assert code == 1
    name = upstream.both.split("/", 1)[1]
    assert f"registry/ {name}: an image for linux/amd64, not linux/arm64" in err
    assert err.strip().splitlines()[-1].endswith("removed it before any push")
    assert not creds.has(f"{image}:v1-arm64")


@pytest.mark.parametrize("moves", ["embedded image", "FROM base"])
def test_a_re_pushed_upstream_tag_rebuilds_exactly_the_app_version_that_embeds_or_builds_on_it(
    capsys, tmp_path, creds, upstream, moves
):
    suffix = secrets.token_hex(3)
    moving_ref = f"{creds.host}/e2e/upstream-{suffix}/moving:v1"
    push_two_arch(moving_ref, "first", tmp_path, creds.authfile)
    base, embedded = ("scratch", moving_ref) if moves == "embedded image" else (moving_ref, upstream.tool)
    repo = write_tree(tmp_path / "repo", {
        "clusterimage.yaml": f"registry: '{creds.host}'\nrepository: e2e-{suffix}\nbuilder: buildah\ntls_verify: false\n",
        "applications/moving/v1/Kubefile": f"FROM {base}\nCOPY registry ./registry\nCOPY images ./images\n",
        "applications/moving/v1/images/shim/List": f"{embedded}\n",
        "applications/steady/v1/Kubefile": "FROM scratch\nCOPY registry ./registry\nCOPY images ./images\n",
        "applications/steady/v1/images/shim/List": f"{upstream.tool}\n",
    })  # fmt: skip

    def plan(*extra):
        assert main(["plan", "--repo", str(repo), "--all", "--format", "json", *extra]) == 0
        out = capsys.readouterr()
        return json.loads(out.out), out.err

    everything, _ = plan()
    for t in everything["build"]:
        runner.build(repo / t["context"], f"{t['name']}:{t['version']}", t["arch"], builder="buildah", push=True,
                     tls_verify=False, inputs=t["inputs"])  # fmt: skip
    for m in everything["manifest"]:
        ins = [f"{t['arch']}={t['inputs']}" for t in everything["build"] if t["app"] == m["app"]]
        runner.manifest(m["image"], m["arches"], inputs=ins, tls_verify=False)
    nothing, _ = plan("--skip-unchanged")
    assert nothing == {"build": [], "manifest": []}

    was = {arch: entry(creds, moving_ref, arch) for arch in ARCHES}
    push_two_arch(moving_ref, "second", tmp_path, creds.authfile)
    again, err = plan("--skip-unchanged")
    assert sorted((t["app"], t["arch"]) for t in again["build"]) == [("moving", "amd64"), ("moving", "arm64")]
    assert [m["app"] for m in again["manifest"]] == ["moving"]
    for arch in ARCHES:
        assert (f"rebuilding {creds.host}/e2e-{suffix}/moving:v1-{arch}: {moving_ref} moved from {was[arch]} "
                f"to {entry(creds, moving_ref, arch)}") in err
