"""Skip unchanged: the plan computes the input digest, the build labels the image with it, and the plan drops what is
already published with the same digest."""

import json
import secrets
import sys
from pathlib import Path

import pytest

from clusterimg import inputs, runner
from clusterimg.cli import main

pytestmark = pytest.mark.e2e

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers import KUBEFILE, write_tree  # noqa: E402


@pytest.fixture
def app_repo(tmp_path, registry):
    app = f"skip-{secrets.token_hex(3)}"
    repo = write_tree(tmp_path / "repo", {
        "clusterimage.yaml": f"registry: '{registry.host}'\nrepository: e2e\nbuilder: buildah\ntls_verify: false\n",
        f"applications/{app}/v1.0.0/Kubefile": KUBEFILE,
        f"applications/{app}/v1.0.0/manifests/app.yaml": "kind: Namespace\n",
    })
    return repo, app


def plan(repo, capsys, *extra):
    assert main(["plan", "--repo", str(repo), "--all", "--format", "json", *extra]) == 0
    out = capsys.readouterr()
    plan.err = out.err
    return json.loads(out.out)


def publish(repo, app, registry, arch, capsys):
    [target] = [t for t in plan(repo, capsys)["build"] if t["arch"] == arch]
    context = repo / f"applications/{app}/v1.0.0"
    runner.build(str(context), f"{registry.host}/e2e/{app}:v1.0.0", arch, builder="buildah", push=True,
                 tls_verify=False, inputs=target["inputs"])
    return target["inputs"]


def test_the_published_image_carries_the_digest_the_plan_handed_to_its_leg(app_repo, creds, capsys):
    repo, app = app_repo
    digest = publish(repo, app, creds, "arm64", capsys)
    label = creds.config(f"{creds.host}/e2e/{app}:v1.0.0-arm64")["config"]["Labels"][inputs.LABEL]
    assert label == digest and len(digest) == 64


def test_skip_unchanged_drops_published_targets_and_a_change_brings_them_back(app_repo, creds, capsys):
    repo, app = app_repo
    everything = plan(repo, capsys)
    assert len(everything["build"]) == 2
    # Nothing published yet: nothing to skip.
    assert len(plan(repo, capsys, "--skip-unchanged")["build"]) == 2
    publish(repo, app, creds, "amd64", capsys)
    kept = plan(repo, capsys, "--skip-unchanged")
    assert [t["arch"] for t in kept["build"]] == ["arm64"]
    assert [m["arches"] for m in kept["manifest"]] == [["amd64", "arm64"]]
    publish(repo, app, creds, "arm64", capsys)
    # Both arch images are current but no list points at them yet: the plan keeps the list, so the fan-in finishes it.
    finishing = plan(repo, capsys, "--skip-unchanged")
    assert finishing["build"] == [] and [m["app"] for m in finishing["manifest"]] == [app]
    assert f"finishing {creds.host}/e2e/{app}:v1.0.0: its images are current, its list is missing" in plan.err
    runner.manifest(f"{creds.host}/e2e/{app}:v1.0.0", ["amd64", "arm64"], tls_verify=False,
                    inputs=[f"{t['arch']}={t['inputs']}" for t in everything["build"]])
    nothing = plan(repo, capsys, "--skip-unchanged")
    assert nothing == {"build": [], "manifest": []}
    # Without --skip-unchanged (a forced run) everything builds again.
    assert plan(repo, capsys) == everything
    (repo / f"applications/{app}/v1.0.0/manifests/app.yaml").write_text("kind: Namespace  # changed\n")
    assert len(plan(repo, capsys, "--skip-unchanged")["build"]) == 2


def test_skip_unchanged_lookup_against_a_dead_registry_builds_everything_after_bounded_retries(tmp_path, capsys):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    repo = write_tree(tmp_path / "repo", {
        "clusterimage.yaml": f"registry: '127.0.0.1:{port}'\nrepository: e2e\ntls_verify: false\n",
        "applications/calico/v1/Kubefile": KUBEFILE,
    })
    import time

    start = time.monotonic()
    data = plan(repo, capsys, "--skip-unchanged")
    assert len(data["build"]) == 2
    assert time.monotonic() - start < 30
    assert plan.err.count("could not inspect") == 3  # two arch images and their list


def test_adoption_counts_a_published_image_without_our_label_as_current_only_when_asked(app_repo, creds, capsys):
    repo, app = app_repo
    for arch in ("amd64", "arm64"):  # published by hand, before this tool: no input label
        runner.build(str(repo / f"applications/{app}/v1.0.0"), f"{creds.host}/e2e/{app}:v1.0.0", arch,
                     builder="buildah", push=True, tls_verify=False)
    assert len(plan(repo, capsys, "--skip-unchanged")["build"]) == 2  # a dispatch rebuilds it
    adopted = plan(repo, capsys, "--skip-unchanged", "--adopt")  # a scheduled run adopts it
    assert adopted == {"build": [], "manifest": []}
    assert f"adopted {creds.host}/e2e/{app}:v1.0.0" in plan.err
