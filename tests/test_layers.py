"""Layered cluster images: build order from in-tree FROMs, and the CMD lint."""

import json
import os
import subprocess
import sys

import pytest

from clusterimg import kubefile as kf
from helpers import KUBEFILE, ROOT


def kubefile(parent: str | None = None, cmd: str = '["kubectl apply -f manifests"]') -> str:
    return f"FROM {parent or 'scratch'}\nCOPY manifests ./manifests\nCMD {cmd}\n"


def stages(cli, repo, *args):
    result = cli("plan", "--repo", repo, "--format", "json", *args)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    return {f"{t['app']}:{t['version']}": t["stage"] for t in data["build"]}, data


def test_chain_gets_one_stage_per_layer_and_any_spelling_of_the_parent_counts(cli, tree):
    repo = tree({
        "applications/kubernetes/v1.27.0/Kubefile": KUBEFILE,
        "applications/calico/v3.26.1/Kubefile": kubefile("docker.io/acme/kubernetes:v1.27.0-amd64"),
        "applications/openebs/v3.9.0/Kubefile": kubefile("acme/calico:v3.26.1"),
        "applications/other/v1/Kubefile": kubefile("docker.io/someone-else/calico:v3.26.1"),
    })
    got, data = stages(cli, repo)
    assert got == {"kubernetes:v1.27.0": 0, "calico:v3.26.1": 1, "openebs:v3.9.0": 2, "other:v1": 0}
    assert [m["stage"] for m in data["manifest"] if m["app"] == "openebs"] == [2]


def test_diamond_takes_the_longest_path(cli, tree):
    repo = tree({
        "applications/base/v1/Kubefile": KUBEFILE,
        "applications/left/v1/Kubefile": kubefile("docker.io/acme/base:v1"),
        "applications/right/v1/Kubefile": kubefile("docker.io/acme/left:v1"),
        "applications/top/v1/Dockerfile": "FROM docker.io/acme/left:v1 AS l\nFROM docker.io/acme/right:v1\n"
                                          "COPY --from=l /x /x\n",
    })
    got, _ = stages(cli, repo)
    assert got == {"base:v1": 0, "left:v1": 1, "right:v1": 2, "top:v1": 3}


def test_a_parent_not_built_in_this_run_is_used_as_published(cli, tree):
    repo = tree({
        "applications/calico/v3.26.1/Kubefile": KUBEFILE,
        "applications/openebs/v3.9.0/Kubefile": kubefile("docker.io/acme/calico:v3.26.1"),
    })
    got, data = stages(cli, repo, "--app", "openebs")
    assert got == {"openebs:v3.9.0": 0}
    assert {t["arch"] for t in data["build"]} == {"amd64", "arm64"}


def test_parent_refs_reach_the_build_leg_as_this_arch_per_arch_image_with_the_digest_it_must_carry(cli, tree):
    repo = tree({
        "applications/calico/v3.26.1/Kubefile": KUBEFILE,
        "applications/openebs/v3.9.0/Kubefile": kubefile("docker.io/acme/calico:v3.26.1-amd64"),
    })
    result = cli("plan", "--repo", repo, "--format", "github", "--stages", "2")
    matrices = json.loads(result.out.partition("=")[2])
    parent = {arch: matrices[f"build_s0_{arch}"][0].pop("inputs") for arch in ("amd64", "arm64")}
    assert parent["amd64"] != parent["arm64"]
    for entries in matrices.values():
        for entry in entries:
            entry.pop("inputs", None)
    # This run builds the parent, so the child leg takes only the parent image that carries this run's digest.
    assert matrices["build_s1_arm64"] == [{
        "app": "openebs", "version": "v3.9.0",
        "parents": f"docker.io/acme/calico:v3.26.1-amd64=docker.io/acme/calico:v3.26.1 {parent['arm64']} built",
    }]
    assert matrices["build_s0_arm64"] == [{"app": "calico", "version": "v3.26.1"}]
    # Without the parent in the run, its published image is checked as well, and one without a label is taken.
    alone = json.loads(cli("plan", "--repo", repo, "--format", "github", "--stages", "2", "--app", "openebs")
                       .out.partition("=")[2])
    assert alone["build_s0_amd64"][0]["parents"].endswith(f"=docker.io/acme/calico:v3.26.1 {parent['amd64']}")


def test_a_parent_change_changes_the_input_digest_of_its_child_and_not_of_others(cli, tree):
    repo = tree({
        "applications/calico/v3.26.1/Kubefile": KUBEFILE,
        "applications/calico/v3.26.1/manifests/cni.yaml": "kind: List\n",
        "applications/openebs/v3.9.0/Kubefile": kubefile("docker.io/acme/calico:v3.26.1"),
        "applications/helm/v3.14.0/Kubefile": KUBEFILE,
    })

    def digests():
        data = json.loads(cli("plan", "--repo", repo, "--format", "json").out)
        return {(t["app"], t["arch"]): t["inputs"] for t in data["build"]}

    before = digests()
    (repo / "applications/calico/v3.26.1/manifests/cni.yaml").write_text("kind: List  # new\n")
    after = digests()
    changed = sorted(key for key in before if before[key] != after[key])
    assert changed == [("calico", "amd64"), ("calico", "arm64"), ("openebs", "amd64"), ("openebs", "arm64")]


def test_stages_become_jobs_that_wait_for_the_previous_fan_in(cli, tree):
    from clusterimg.yamlio import load

    repo = tree({
        "applications/calico/v3.26.1/Kubefile": KUBEFILE,
        "applications/openebs/v3.9.0/Kubefile": kubefile("docker.io/acme/calico:v3.26.1"),
    })
    assert cli("workflows", "--repo", repo).code == 0
    jobs = load((repo / ".github/workflows/clusterimage.yml").read_text())["jobs"]
    assert sorted(jobs) == ["build-s0-amd64", "build-s0-arm64", "build-s1-amd64", "build-s1-arm64",
                            "keepalive", "manifest-s0", "manifest-s1", "plan"]
    assert jobs["build-s1-arm64"]["needs"] == ["plan", "manifest-s0"]
    assert jobs["manifest-s1"]["needs"] == ["plan", "build-s1-amd64", "build-s1-arm64"]
    # A held-back list of stage 0 holds back only its own children, whose legs check their parent image.
    assert jobs["build-s1-amd64"]["if"].startswith("${{ !cancelled() && needs.plan.result == 'success' && ")
    assert "failure()" not in jobs["build-s1-amd64"]["if"]


def test_a_from_cycle_is_a_user_error_naming_the_cycle(cli, tree):
    repo = tree({
        "applications/a/v1/Kubefile": kubefile("docker.io/acme/b:v1"),
        "applications/b/v1/Kubefile": kubefile("docker.io/acme/a:v1"),
    })
    for command in ("plan", "workflows"):
        result = cli(command, "--repo", repo)
        assert result.code == 2
        assert "FROM cycle: a:v1 -> b:v1 -> a:v1" in result.err and len(result.err.strip().splitlines()) == 1


CHILD_MISSING = '["kubectl apply -f manifests/openebs.yaml"]'
CHILD_FULL = '["kubectl apply -f cni/calico.yaml", "kubectl apply -f manifests/openebs.yaml"]'


@pytest.mark.parametrize("command", ["lint", "workflows"])
def test_cmd_lint_names_both_files_and_the_missing_command(cli, tree, command):
    repo = tree({
        "applications/calico/v3.26.1/Kubefile": kubefile(cmd='["kubectl apply -f cni/calico.yaml"]'),
        "applications/openebs/v3.9.0/Kubefile": kubefile("docker.io/acme/calico:v3.26.1", CHILD_MISSING),
    })
    result = cli(command, "--repo", repo)
    assert result.code == 0
    assert ("warning: applications/openebs/v3.9.0: CMD does not run 'kubectl apply -f cni/calico.yaml' "
            "from the CMD of its parent applications/calico/v3.26.1") in result.err
    strict = cli(command, "--repo", repo, "--strict")
    assert strict.code == 1 and "--strict" in strict.err


def test_cmd_lint_is_quiet_when_the_child_repeats_or_inherits_the_parent_cmd(cli, tree):
    repo = tree({
        "applications/calico/v3.26.1/Kubefile": kubefile(cmd='["kubectl apply -f cni/calico.yaml"]'),
        "applications/openebs/v3.9.0/Kubefile": kubefile("docker.io/acme/calico:v3.26.1", CHILD_FULL),
        "applications/inherit/v1/Kubefile": "FROM docker.io/acme/calico:v3.26.1\nCOPY x ./x\n",
    })
    result = cli("lint", "--repo", repo, "--strict")
    assert result.code == 0 and "warning" not in result.err


def test_shipped_examples_layer_openebs_on_calico_with_the_combined_cmd(cli):
    from helpers import ROOT

    result = cli("lint", "--repo", ROOT / "examples", "--strict")
    assert result.code == 0, result.err
    got, _ = stages(cli, ROOT / "examples", "--all")
    assert got["openebs:v3.9.0"] == 1 and got["calico:v3.26.1"] == 0


def test_a_diff_that_touches_a_parent_selects_its_children_in_later_stages(cli, tree):
    from helpers import committed, git

    repo = committed(tree({
        "applications/calico/v3.26.1/Kubefile": KUBEFILE,
        "applications/openebs/v3.9.0/Kubefile": kubefile("docker.io/acme/calico:v3.26.1"),
        "applications/helm/v3.14.0/Kubefile": KUBEFILE,
    }))
    before = git(repo, "rev-parse", "HEAD")
    (repo / "applications/calico/v3.26.1/README").write_text("changed\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "calico")
    data = json.loads(cli("plan", "--repo", repo, "--changed-from", before, "--format", "json").out)
    assert sorted({(t["app"], t["stage"]) for t in data["build"]}) == [("calico", 0), ("openebs", 1)]


# The plan reads FROM with kubefile.parse and the build leg rewrites it with kubefile.rewrite (build.sh runs the
# module): each case goes through both, so the two cannot disagree on what a FROM names.
REWRITES = [
    ("FROM r/calico:v1\nCMD [\"a\"]\n", "FROM r/calico:v1-arm64\nCMD [\"a\"]\n"),
    ("from --platform=$P r/calico:v1-amd64 AS base\n", "from --platform=$P r/calico:v1-arm64 AS base\n"),
    ("FROM \\\n  --platform=linux/arm64 \\\n  r/calico:v1\nCOPY . .\n", "FROM --platform=linux/arm64 r/calico:v1-arm64\nCOPY . .\n"),
    ("# FROM r/calico:v1\nFROM scratch\n", "# FROM r/calico:v1\nFROM scratch\n"),
    ("FROM r/other:v1\nRUN echo FROM r/calico:v1\n", "FROM r/other:v1\nRUN echo FROM r/calico:v1\n"),
]


@pytest.mark.parametrize(("kubefile", "rewritten"), REWRITES)
def test_the_leg_rewrites_exactly_the_froms_the_plan_reads(kubefile, rewritten, tmp_path):
    path = tmp_path / "Kubefile"
    path.write_text(kubefile)
    parents = f"r/calico:v1=r/calico:v1 {'a' * 64} built\nr/calico:v1-amd64=r/calico:v1 {'a' * 64}\n"
    env = {**os.environ, "CIMG_PARENTS": parents, "PYTHONPATH": str(ROOT / "generator")}
    proc = subprocess.run([sys.executable, "-m", "clusterimg.kubefile", str(path), "arm64"], env=env,
                          capture_output=True, text=True, check=True)
    assert proc.stdout == rewritten
    bases = {"r/calico:v1": "r/calico:v1-arm64", "r/calico:v1-amd64": "r/calico:v1-arm64"}
    assert kf.parse(proc.stdout).froms == tuple(bases.get(f, f) for f in kf.parse(kubefile).froms)
