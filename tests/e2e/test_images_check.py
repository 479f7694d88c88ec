"""`images --check` and the action's pre-flight against a real registry: an amd64-only list, an arm64-only image."""

from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

import pytest

from clusterimg.paths import scripts_dir
from helpers import ROOT, write_tree

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Published:
    amd64_only: str  # a manifest list whose one entry is linux/amd64
    arm64_only: str  # a single linux/arm64 image, no list
    both: str  # a manifest list of linux/amd64 and linux/arm64


def buildah(*args: str, authfile) -> None:
    env = {**os.environ, "REGISTRY_AUTH_FILE": str(authfile)}  # the tests' own login
    proc = subprocess.run(["buildah", *args], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, f"buildah {shlex.join(args)}: {proc.stderr}"


@pytest.fixture(scope="module")
def published(registry, tmp_path_factory) -> Iterator[Published]:
    files = {"Containerfile": "FROM scratch\nCOPY hello /\n", "hello": "hi\n"}
    ctx = write_tree(tmp_path_factory.mktemp("scratch"), files)
    repo = f"{registry.host}/e2e/images-check-{secrets.token_hex(3)}"
    run = partial(buildah, authfile=registry.authfile)
    local = {arch: f"{repo}:local-{arch}" for arch in ("amd64", "arm64")}
    lists = [f"{repo}:list-amd64-only", f"{repo}:list-both"]
    try:
        for arch, tag in local.items():
            run("build", "--platform", f"linux/{arch}", "-t", tag, "-f", str(ctx / "Containerfile"), str(ctx))
        for name, arches in zip(lists, (["amd64"], ["amd64", "arm64"])):
            run("manifest", "create", name)
            for arch in arches:
                run("manifest", "add", name, f"containers-storage:{local[arch]}")
        out = Published(f"{repo}:amd64-only", f"{repo}:arm64-only", f"{repo}:both")
        run("manifest", "push", "--all", "--tls-verify=false", lists[0], f"docker://{out.amd64_only}")
        run("manifest", "push", "--all", "--tls-verify=false", lists[1], f"docker://{out.both}")
        run("push", "--tls-verify=false", local["arm64"], f"docker://{out.arm64_only}")
        yield out
    finally:
        for cmd in (["manifest", "rm", *lists], ["rmi", "-f", *local.values()]):
            subprocess.run(["buildah", *cmd], capture_output=True, check=False)


@pytest.fixture
def context(tmp_path, published):
    """A cluster-image context whose shim list names all three images (and one twice)."""
    shim = f"# embedded\n{published.amd64_only}\n{published.arm64_only}\n\n{published.both}\n{published.both}\n"
    return write_tree(tmp_path / "ctx", {
        "Kubefile": "FROM scratch\nCOPY images ./images\n",
        "images/shim/List": shim,
    })  # fmt: skip


def check(cli, ctx, registry, *args):
    result = cli("images", ctx, "--check", "--no-tls-verify", "--registry", registry.host, "--format", "json", *args)
    return result.code, json.loads(result.out), result.err


def pairs(data: dict) -> list[tuple[str, str]]:
    return [(m["image"], m["arch"]) for m in data["missing"]]


def test_platforms_are_what_the_fixtures_claim(published, registry):
    raw = json.loads(registry.raw(published.amd64_only))
    assert [m["platform"]["architecture"] for m in raw["manifests"]] == ["amd64"]
    assert "manifests" not in json.loads(registry.raw(published.arm64_only))
    assert registry.config(published.arm64_only)["architecture"] == "arm64"


def test_check_arm64_reports_exactly_the_amd64_only_list(cli, context, published, creds):
    code, data, err = check(cli, context, creds, "--arch", "arm64")

    assert code == 1
    assert data["images"] == sorted([published.amd64_only, published.arm64_only, published.both])
    assert pairs(data) == [(published.amd64_only, "arm64")]
    assert data["missing"][0]["problem"] == "no linux/arm64 (has linux/amd64)"
    assert err == "error: 1 image × arch pair(s) missing, in 1 of 3 image(s)\n"


def test_check_amd64_reports_exactly_the_arm64_only_image(cli, context, published, creds):
    code, data, _ = check(cli, context, creds, "--arch", "amd64")

    assert (code, pairs(data)) == (1, [(published.arm64_only, "amd64")])
    assert data["missing"][0]["problem"] == "no linux/amd64 (has linux/arm64)"


def test_check_of_both_arches_prints_a_table_of_every_missing_pair(cli, context, published, creds):
    result = cli("images", context, "--check", "--no-tls-verify", "--registry", creds.host)

    assert result.code == 1
    table = result.out.split("\n\n")[1].splitlines()
    assert table[0].split() == ["IMAGE", "ARCH", "PROBLEM"]
    assert [row.split()[:2] for row in table[1:]] == [[published.amd64_only, "arm64"], [published.arm64_only, "amd64"]]


def test_check_passes_when_every_image_exists_for_every_arch(cli, tmp_path, published, creds):
    ctx = write_tree(tmp_path / "ctx", {"manifests/app.yaml": f"spec:\n  containers:\n    - image: {published.both}\n"})

    code, data, err = check(cli, ctx, creds)

    assert (code, data) == (0, {"images": [published.both], "missing": []})
    assert err == "all 1 image(s) exist for linux/amd64, linux/arm64\n"


def test_an_image_the_registry_does_not_have_is_missing_for_every_arch(cli, tmp_path, published, creds):
    gone = published.both.replace(":both", ":never-pushed")
    ctx = write_tree(tmp_path / "ctx", {"images/shim/List": f"{gone}\n"})

    code, data, _ = check(cli, ctx, creds)

    assert code == 1
    assert data["missing"] == [{"image": gone, "arch": a, "problem": "image not found"} for a in ("amd64", "arm64")]


def test_without_credentials_the_existing_login_is_used(cli, context, published, registry, monkeypatch):
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(registry.authfile))

    result = cli("images", context, "--check", "--no-tls-verify", "--registry", registry.host, "--arch", "arm64",
                 "--format", "json")

    assert (result.code, pairs(json.loads(result.out))) == (1, [(published.amd64_only, "arm64")])


def test_password_reaches_skopeo_on_stdin_only(cli, context, creds, fakes, on_path, tmp_path, monkeypatch):
    argv_log = tmp_path / "argv.log"
    monkeypatch.setenv("ARGV_LOG", str(argv_log))
    on_path(fakes / "argv_log")

    result = cli("images", context, "--check", "--no-tls-verify", "--registry", creds.host, "--arch", "arm64")

    calls = [shlex.split(line) for line in argv_log.read_text().splitlines()]
    [login] = [c for c in calls if c[:2] == ["skopeo", "login"]]
    assert "--password-stdin" in login and login[login.index("--authfile") + 1] != str(creds.authfile)
    assert len([c for c in calls if c[:2] == ["skopeo", "inspect"]]) >= 3
    for text in (argv_log.read_text(), result.out, result.err):
        assert creds.password not in text


@pytest.fixture
def preflight_then_build(tmp_path, fakes, registry, image):
    """Runs the action's two steps in order, images.sh then build.sh, with a recording buildah first on PATH."""
    gen = tmp_path / "clusterimg-gen"
    gen.write_text(f"#!/usr/bin/env bash\nPYTHONPATH={shlex.quote(str(ROOT / 'generator'))} "
                   f"exec {shlex.quote(sys.executable)} -m clusterimg \"$@\"\n")  # fmt: skip
    gen.chmod(0o755)
    argv_log = tmp_path / "buildah.argv"

    def run(ctx, arch):
        env = {
            **os.environ,
            "PATH": f"{fakes / 'argv_log'}{os.pathsep}{os.environ['PATH']}",
            "ARGV_LOG": str(argv_log),
            "CIMG_GEN": str(gen),
            "CIMG_ACTION_PATH": str(ROOT),
            "CIMG_CONTEXT": str(ctx),
            "CIMG_ARCH": arch,
            "CIMG_TLS_VERIFY": "false",
            "CIMG_REGISTRY": registry.host,
            "CIMG_USERNAME": registry.username,
            "CIMG_PASSWORD": registry.password,
            "CIMG_BUILDER": "buildah",
            "CIMG_IMAGE": image,
            "CIMG_VERSION": "v1",
        }
        steps = f"bash {scripts_dir() / 'images.sh'} && bash {scripts_dir() / 'build.sh'}"
        proc = subprocess.run(["bash", "-c", steps], env=env, capture_output=True, text=True)
        builds = [c for c in map(shlex.split, argv_log.read_text().splitlines()) if c[:2] == ["buildah", "build"]] \
            if argv_log.exists() else []  # fmt: skip
        return proc, builds

    return run


def test_preflight_stops_the_action_before_buildah_build_runs(preflight_then_build, context, published):
    proc, builds = preflight_then_build(context, "arm64")

    assert proc.returncode != 0
    assert f"{published.amd64_only}  arm64  no linux/arm64 (has linux/amd64)" in proc.stdout
    assert published.arm64_only not in proc.stdout.split("\n\n")[-1]
    assert "not building (check-images: false skips this check)" in proc.stderr
    assert builds == []


def test_preflight_lets_the_build_run_when_every_image_has_the_arch(preflight_then_build, tmp_path, published):
    ctx = write_tree(tmp_path / "ok", {"Kubefile": "FROM scratch\nCOPY images ./images\n",
                                       "images/shim/List": f"{published.both}\n{published.arm64_only}\n"})  # fmt: skip

    proc, builds = preflight_then_build(ctx, "arm64")

    assert proc.returncode == 0, proc.stderr
    assert len(builds) == 1 and "linux/arm64" in builds[0]
