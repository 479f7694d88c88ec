import json

from helpers import KUBEFILE, committed, git


def plan_json(cli, repo, *args):
    result = cli("plan", "--repo", repo, "--format", "json", *args)
    assert result.code == 0, result.err
    return json.loads(result.out)


def test_every_version_dir_with_a_kubefile_becomes_one_target_per_arch(cli, tree):
    repo = tree({
        "applications/calico/v3.26.1/Kubefile": KUBEFILE,
        "applications/calico/v3.27.0/Dockerfile": KUBEFILE,
        "applications/calico/docs/README.md": "not a version\n",
    })
    data = plan_json(cli, repo)
    assert [(t["version"], t["arch"]) for t in data["build"]] == [
        ("v3.26.1", "amd64"), ("v3.26.1", "arm64"), ("v3.27.0", "amd64"), ("v3.27.0", "arm64"),
    ]
    first = data["build"][0]
    assert first == {
        "app": "calico", "version": "v3.26.1", "arch": "amd64", "runner": "ubuntu-24.04",
        "context": "applications/calico/v3.26.1", "file": "applications/calico/v3.26.1/Kubefile",
        "name": "docker.io/acme/calico", "image": "docker.io/acme/calico:v3.26.1-amd64",
        "prepare": False, "build_args": "", "stage": 0,
    }
    assert data["build"][1]["runner"] == "ubuntu-24.04-arm"
    assert data["build"][2]["file"].endswith("/Dockerfile")
    assert data["manifest"][0] == {
        "app": "calico", "version": "v3.26.1", "name": "docker.io/acme/calico",
        "image": "docker.io/acme/calico:v3.26.1", "arches": ["amd64", "arm64"], "stage": 0,
    }


def test_build_arch_file_limits_matrix_to_one_arch(cli, tree):
    repo = tree({"applications/helm/v3.14.0/Kubefile": KUBEFILE, "applications/helm/v3.14.0/build_arch": "arm64\n"})
    data = plan_json(cli, repo)
    assert [t["arch"] for t in data["build"]] == ["arm64"]
    assert data["manifest"][0]["arches"] == ["arm64"]


def test_latest_template_builds_only_versions_named_in_config(cli, tree):
    files = {"applications/nginx/latest/Kubefile": KUBEFILE, "applications/nginx/latest/init.sh": "#!/bin/sh\n"}
    assert plan_json(cli, tree(files))["build"] == []
    repo = tree(files, config="repository: acme\napps:\n  nginx:\n    versions: [v1.25.0]\n    arches: [amd64]\n")
    data = plan_json(cli, repo)
    assert [(t["version"], t["context"], t["prepare"]) for t in data["build"]] == [
        ("v1.25.0", "applications/nginx/latest", True)
    ]
    assert all(t["version"] != "latest" for t in data["build"])


def test_versions_and_build_args_are_read_as_written_not_as_yaml_1_1_numbers(cli, tree):
    files = {"applications/nginx/latest/Kubefile": KUBEFILE, "applications/nginx/latest/init.sh": "#!/bin/sh\n"}
    config = (
        "repository: acme\napps:\n  nginx:\n    versions: [1.10, 010, 0x1F, 1_000]\n    arches: [amd64]\n"
        "    build_args:\n      A: 010\n      B: 1:20\n"
    )
    data = plan_json(cli, tree(files, config=config))
    assert sorted(t["version"] for t in data["build"]) == ["010", "0x1F", "1.10", "1_000"]
    assert {t["build_args"] for t in data["build"]} == {"A=010\nB=1:20"}


def test_dispatch_may_name_a_template_version_config_does_not_list(cli, tree):
    repo = tree({"applications/nginx/latest/Kubefile": KUBEFILE, "applications/nginx/latest/init.sh": "#!/bin/sh\n"})
    data = plan_json(cli, repo, "--app", "nginx", "--version", "v1.26.0")
    assert {t["version"] for t in data["build"]} == {"v1.26.0"}
    missing = cli("plan", "--repo", repo, "--app", "calico", "--version", "v9")
    assert missing.code == 2 and "no such app-version" in missing.err


def test_app_and_version_select_one_app_version(cli, tree):
    repo = tree({
        "applications/calico/v3.26.1/Kubefile": KUBEFILE,
        "applications/calico/v3.27.0/Kubefile": KUBEFILE,
        "applications/helm/v3.14.0/Kubefile": KUBEFILE,
    })
    assert {t["app"] for t in plan_json(cli, repo, "--app", "calico")["build"]} == {"calico"}
    data = plan_json(cli, repo, "--app", "calico", "--version", "v3.27.0")
    assert {(t["app"], t["version"]) for t in data["build"]} == {("calico", "v3.27.0")}


def test_changed_from_selects_only_app_versions_whose_files_changed(cli, tree):
    repo = tree({
        "applications/calico/v3.26.1/Kubefile": KUBEFILE,
        "applications/helm/v3.14.0/Kubefile": KUBEFILE,
    })
    committed(repo)
    base = git(repo, "rev-parse", "HEAD")
    (repo / "applications/helm/v3.14.0/Kubefile").write_text(KUBEFILE + "# changed\n")
    git(repo, "commit", "-qam", "two")
    data = plan_json(cli, repo, "--changed-from", base)
    assert {(t["app"], t["version"]) for t in data["build"]} == {("helm", "v3.14.0")}
    assert plan_json(cli, repo, "--changed-from", "HEAD")["build"] == []
    # A new branch pushes with an all-zero `before`: everything builds.
    assert len(plan_json(cli, repo, "--changed-from", "0" * 40)["build"]) == 4


def test_a_change_to_the_config_selects_every_app_version(cli, tree):
    repo = tree({
        "applications/calico/v3.26.1/Kubefile": KUBEFILE,
        "applications/helm/v3.14.0/Kubefile": KUBEFILE,
    })
    committed(repo)
    (repo / "clusterimage.yaml").write_text("repository: acme\nregistry: ghcr.io\n")
    git(repo, "commit", "-qam", "two")
    data = plan_json(cli, repo, "--changed-from", "HEAD~1")
    assert len(data["build"]) == 4
    assert data["build"][0]["image"].startswith("ghcr.io/acme/")


def test_changed_from_an_unknown_rev_is_a_one_line_error(cli, tree):
    repo = tree()
    committed(repo)
    result = cli("plan", "--repo", repo, "--changed-from", "no-such-rev")
    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1 and "no-such-rev" in result.err


def test_runner_label_lists_reach_the_plan(cli, tree):
    repo = tree(config="repository: acme\nrunners:\n  arm64: [self-hosted, arm64]\n")
    data = plan_json(cli, repo)
    assert [t["runner"] for t in data["build"]] == ["ubuntu-24.04", ["self-hosted", "arm64"]]


def test_github_format_is_one_compact_matrices_output(cli, tree):
    result = cli("plan", "--repo", tree(), "--format", "github")
    key, _, value = result.out.strip().partition("=")
    assert key == "matrices" and "\n" not in value and " " not in value.replace("amd64 arm64", "")
    assert json.loads(value) == {
        "build_amd64": [{"app": "calico", "version": "v3.26.1"}],
        "build_arm64": [{"app": "calico", "version": "v3.26.1"}],
        "manifest": [{"app": "calico", "version": "v3.26.1", "arches": "amd64 arm64"}],
    }


def test_plan_and_workflows_do_not_import_ghapi(tree):
    import subprocess
    import sys

    from helpers import ROOT

    repo = tree()
    probe = (
        "import sys; sys.path.insert(0, %r)\n"
        "from clusterimg.cli import main\n"
        "assert main(['plan', '--repo', %r, '--format', 'json']) == 0\n"
        "assert main(['workflows', '--repo', %r]) == 0\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ghapi', 'fastcore', 'urllib3', 'requests')))\n"
    ) % (str(ROOT / "generator"), str(repo), str(repo))
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_per_app_schedule_override_and_opt_out(cli, tree):
    from clusterimg.yamlio import load

    repo = tree(
        {
            "applications/calico/v3.26.1/Kubefile": KUBEFILE,
            "applications/helm/v3.14.0/Kubefile": KUBEFILE,
            "applications/kube-vip/v0.7.0/Kubefile": KUBEFILE,
        },
        config="repository: acme\nschedule: '5 4 * * 1'\napps:\n  helm:\n    schedule: '7 2 1 * *'\n"
        "  kube-vip:\n    schedule: false\n",
    )
    assert cli("workflows", "--repo", repo).code == 0
    crons = [s["cron"] for s in load((repo / ".github/workflows/clusterimage.yml").read_text())["on"]["schedule"]]
    assert crons == ["5 4 * * 1", "7 2 1 * *"]

    def apps(cron):
        return {t["app"] for t in plan_json(cli, repo, "--schedule", cron)["build"]}

    assert apps("5 4 * * 1") == {"calico"}
    assert apps("7 2 1 * *") == {"helm"}
    assert apps("*") == {"calico", "helm"}
    assert "kube-vip" in {t["app"] for t in plan_json(cli, repo, "--all")["build"]}


def test_summary_appends_the_text_plan_from_the_same_run(cli, tree, tmp_path):
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n")
    result = cli("plan", "--repo", tree(), "--format", "github", "--summary", summary)
    assert result.out.startswith("matrices=")
    text = cli("plan", "--repo", tree()).out
    assert summary.read_text() == "# earlier step\n```\n" + text + "```\n"
