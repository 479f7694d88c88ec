"""A labring-shaped tree plans the way labring's own CI builds it: every dir accounted for, none twice."""

import json

import pytest

from helpers import labring_tree, snapshot


def plan(cli, repo, *args, fmt="json"):
    result = cli("plan", "--repo", repo, "--format", fmt, *args)
    assert result.code == 0, result.err
    return (json.loads(result.out) if fmt == "json" else result.out), result.err


@pytest.fixture
def repo(tmp_path):
    return labring_tree(tmp_path / "labring")


def test_every_versioned_dir_with_a_build_file_or_init_sh_is_planned_for_its_arches_once(cli, repo):
    data, err = plan(cli, repo, "--all")
    builds = [(t["app"], t["version"], t["arch"], t["context"]) for t in data["build"]]
    assert builds == [
        ("calico", "v3.26.1", "amd64", "applications/calico/v3.26.1"),
        ("calico", "v3.26.1", "arm64", "applications/calico/v3.26.1"),
        ("cert-manager", "v1.12.6", "amd64", "applications/cert-manager/v1.12.6"),
        ("cert-manager", "v1.12.6", "arm64", "applications/cert-manager/v1.12.6"),
        ("chatbot-ui", "main", "amd64", "applications/chatbot-ui/main"),
        ("chatbot-ui", "main", "arm64", "applications/chatbot-ui/main"),
        ("kubegems", "v1.22.2", "amd64", "applications/kubegems/v1.22.2"),
        ("kubegems", "v1.22.2", "arm64", "applications/kubegems/v1.22.2"),
    ]
    assert "percona-server-mongodb-operator " in err


def test_text_plan_accounts_for_every_dir_under_apps_dir(cli, repo):
    text, err = plan(cli, repo, "--all", fmt="text")
    for line in [
        "  template applications/affine/latest  dispatch only",
        "  template applications/cert-manager/latest  dispatch only",
        "  template applications/koperator/latest  dispatch only",
        "  template applications/kube-state-metrics/latest  dispatch only",
        "  template applications/sealos/latest  dispatch only",
        "  skipped  applications/kubesphere/images  no Kubefile, Dockerfile, Sealfile or init.sh",
        "  skipped  applications/percona-server-mongodb-operator   app name 'percona-server-mongodb-operator ' is not",
    ]:
        assert line in text, line
    accounted = {line.split()[1] for line in text.splitlines() if line.startswith(("  template", "  skipped"))}
    accounted |= {line.split("from ")[1] for line in text.splitlines() if line.startswith("  build")}
    dirs = {p.relative_to(repo).as_posix() for p in (repo / "applications").glob("*/*") if p.is_dir()}
    dirs = {d.replace("operator /v1.15.0", "operator") for d in dirs} - {"applications/kubesphere/images"}
    assert dirs - accounted == set()
    assert err.count("warning: ") == 1


def test_a_dispatch_of_a_version_without_its_own_dir_builds_from_latest_and_never_from_another_version(cli, repo):
    data, _ = plan(cli, repo, "--app", "cert-manager", "--version", "v1.13.2")
    assert {t["context"] for t in data["build"]} == {"applications/cert-manager/latest"}
    own, _ = plan(cli, repo, "--app", "cert-manager", "--version", "v1.12.6")
    assert {t["context"] for t in own["build"]} == {"applications/cert-manager/v1.12.6"}


def test_a_versioned_dir_with_init_sh_serves_no_other_version(cli, repo):
    result = cli("plan", "--repo", repo, "--app", "kubegems", "--version", "v1.23.0")
    assert (result.code, result.err.splitlines()[-1]) == (
        2, "error: applications/kubegems/v1.23.0: no such version, and no latest/ template to make it"
    )


def test_build_arch_in_latest_pins_every_version_built_from_it(cli, repo):
    data, _ = plan(cli, repo, "--app", "koperator", "--version", "v0.25.1")
    assert [t["arch"] for t in data["build"]] == ["amd64"]
    assert [m["arches"] for m in data["manifest"]] == [["amd64"]]


def test_config_may_name_the_template_dir(cli, tmp_path):
    repo = labring_tree(tmp_path / "r", "repository: labring\napps:\n  kubegems:\n    template: v1.22.2\n"
                                        "    versions: [v1.23.0]\n")
    data, _ = plan(cli, repo, "--app", "kubegems")
    assert [(t["version"], t["context"]) for t in data["build"] if t["arch"] == "amd64"] == [
        ("v1.22.2", "applications/kubegems/v1.22.2"), ("v1.23.0", "applications/kubegems/v1.22.2"),
    ]


@pytest.mark.parametrize("apps, expected", [
    ("cert-manager:\n    versions: [v1.12.6]",
     "clusterimage.yaml: apps.cert-manager.versions: 'v1.12.6': expected a version without its own directory"),
    ("chatbot-ui:\n    versions: [v2]",
     "clusterimage.yaml: apps.chatbot-ui.versions: 'v2': expected versions only for an app with a template"),
    ("nope:\n    arches: [amd64]",
     "clusterimage.yaml: apps.nope: 'nope': expected an app with a directory in applications"),
    ("kubegems:\n    template: v9",
     "clusterimage.yaml: apps.kubegems.template: 'v9': expected a directory in applications/kubegems"),
])  # fmt: skip
@pytest.mark.parametrize("command", ["workflows", "plan", "lint"])
def test_config_mistakes_about_the_tree_are_one_line_exit_2(cli, tmp_path, apps, expected, command):
    repo = labring_tree(tmp_path / "r", f"repository: labring\napps:\n  {apps}\n")
    before = snapshot(repo)
    result = cli(command, "--repo", repo)
    assert result.code == 2
    lines = [line for line in result.err.splitlines() if not line.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith(f"error: {expected}"), result.err
    assert snapshot(repo) == before


def test_the_workflow_passes_the_setup_script_to_every_build_leg(cli, repo):
    assert cli("workflows", "--repo", repo).code == 0
    text = (repo / ".github/workflows/clusterimage.yml").read_text()
    assert text.count('setup: ".github/scripts/setup-apps.sh"') == 2


def test_a_dispatch_naming_an_app_that_does_not_exist_fails_naming_it(cli, repo):
    result = cli("plan", "--repo", repo, "--app", "nope")
    assert (result.code, result.err.splitlines()[-1]) == (2, "error: applications/nope: no such app")
