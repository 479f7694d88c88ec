import json

import pytest

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
    inputs = first.pop("inputs")
    assert first == {
        "app": "calico", "version": "v3.26.1", "arch": "amd64", "runner": "ubuntu-24.04",
        "context": "applications/calico/v3.26.1",
        "name": "docker.io/acme/calico", "image": "docker.io/acme/calico:v3.26.1-amd64",
        "build_args": "", "stage": 0, "time": None,
    }
    assert len(inputs) == 64 and inputs != data["build"][1]["inputs"]  # the arch is one of the inputs
    assert data["build"][1]["runner"] == "ubuntu-24.04-arm"
    assert data["build"][2]["context"] == "applications/calico/v3.27.0"
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
    assert [(t["version"], t["context"]) for t in data["build"]] == [("v1.25.0", "applications/nginx/latest")]
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
    assert (missing.code, missing.err) == (2, "error: applications/calico: no such app\n")


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
    assert key == "matrices" and "\n" not in value and ": " not in value and ", " not in value
    matrices = json.loads(value)
    for entry in matrices["build_amd64"] + matrices["build_arm64"]:
        assert len(entry.pop("inputs")) == 64
    amd64, arm64 = matrices["manifest"][0].pop("inputs").split(" ")
    assert amd64.startswith("amd64=") and arm64.startswith("arm64=")
    assert matrices == {
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


def test_skip_unchanged_keeps_stale_images_finishes_missing_lists_and_adopts_only_when_asked():
    from clusterimg import plan as plan_mod
    from clusterimg.inputs import LABEL
    from clusterimg.model import Arch, Manifest, Plan, Target
    from clusterimg.registry import Published

    def av(app):
        build = tuple(Target(app=app, version="v1", arch=a, runner=("r",), context=f"a/{app}", name=f"r/{app}",
                             build_args="", inputs=f"{app}-{a}") for a in Arch)  # fmt: skip
        return build, Manifest(app=app, version="v1", name=f"r/{app}", arches=tuple(Arch))

    apps = ["current", "stale", "half", "unlabeled"]
    pieces = [av(app) for app in apps]
    plan = Plan(build=tuple(t for b, _ in pieces for t in b), manifest=tuple(m for _, m in pieces))
    images = {}
    for t in plan.build:
        label = {"current": t.inputs, "half": t.inputs, "stale": "old", "unlabeled": None}[t.app]
        images[t.image] = Published(digest=f"sha256:{t.app}{t.arch}", labels={LABEL: label} if label else {"x": "y"})
    lists = {m.image: Published(digest="sha256:l", labels={}, listed=frozenset(
        images[t.image].digest for t in plan.build if t.app == m.app)) for m in plan.manifest if m.app != "half"}

    kept, notes = plan_mod.skip_unchanged(plan, images, lists, adopt=False)
    assert sorted({t.app for t in kept.build}) == ["stale", "unlabeled"]
    assert [m.app for m in kept.manifest] == ["stale", "half", "unlabeled"]
    assert notes == ["finishing r/half:v1: its images are current, its list is missing"]

    kept, notes = plan_mod.skip_unchanged(plan, images, lists, adopt=True)
    assert sorted({t.app for t in kept.build}) == ["stale"]
    assert "adopted r/unlabeled:v1: published without an input label; rebuilt on a change, force or dispatch" in notes


def test_each_build_is_stamped_with_the_commit_time_of_the_last_change_to_its_context(cli, tree, monkeypatch):
    repo = tree({"applications/calico/v3.26.1/Kubefile": KUBEFILE, "applications/helm/v3.14.0/Kubefile": KUBEFILE})
    monkeypatch.setenv("GIT_COMMITTER_DATE", "1700000000 +0000")
    committed(repo)
    (repo / "applications/helm/v3.14.0/README").write_text("later\n")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "1700000500 +0000")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "two")
    data = plan_json(cli, repo)
    assert {(t["app"], t["time"]) for t in data["build"]} == {("calico", 1700000000), ("helm", 1700000500)}
    # The same on both arches, and in the matrix the leg reads.
    matrices = json.loads(cli("plan", "--repo", repo, "--format", "github").out.partition("=")[2])
    assert {e["time"] for e in matrices["build_arm64"] + matrices["build_amd64"]} == {1700000000, 1700000500}


# clusterimg-gen as the plan job runs it, except that importing the GitHub client fails: planning never needs it.
NO_GHAPI = """#!/bin/sh
exec "{python}" -c 'import runpy, sys
sys.modules["ghapi"] = None
sys.argv[0] = "clusterimg-gen"
runpy.run_module("clusterimg", run_name="__main__")' "$@"
"""


@pytest.fixture
def push_plan(tree, tmp_path):
    """(fake GitHub, run): run(**env) plans a push of a commit whose parent's push run was cancelled while pending,
    with scripts/plan.sh as the plan job does; returns (apps built, stderr)."""
    import os
    import subprocess
    import sys

    from fake_github import FakeGitHub

    from helpers import ROOT

    repo = committed(tree({"applications/calico/v1/Kubefile": KUBEFILE, "applications/helm/v1/Kubefile": KUBEFILE}))
    (repo / "applications/calico/v1/README").write_text("a change whose run was cancelled while pending\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "calico")
    before = git(repo, "rev-parse", "HEAD")
    (repo / "applications/helm/v1/README").write_text("the newest push\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "helm")
    gen = tmp_path / "clusterimg-gen"
    gen.write_text(NO_GHAPI.format(python=sys.executable))
    gen.chmod(0o755)
    output = tmp_path / "output"
    with FakeGitHub() as gh:
        gh.token = "ghs_test0000token0000never0000printed"

        def run(**env: str) -> tuple[list[str], str]:
            output.write_text("")
            keep = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CIMG_", "RUNNER_"))}
            env = {**keep, "CIMG_ACTION_PATH": str(ROOT / "plan"), "CIMG_GEN": str(gen), "CIMG_REPO": str(repo),
                   "CIMG_EVENT": "push", "CIMG_BEFORE": before, "CIMG_WORKFLOW": "clusterimage.yml",
                   "CIMG_TOKEN": gh.token, "CIMG_RETRY_DELAY": "0", "GITHUB_API_URL": gh.url,
                   "GITHUB_REPOSITORY": "acme/images", "GITHUB_REF_NAME": "main", "GITHUB_OUTPUT": str(output), **env}
            proc = subprocess.run(["bash", str(ROOT / "scripts/plan.sh")], env=env, capture_output=True, text=True,
                                  timeout=120)  # fmt: skip
            assert proc.returncode == 0, proc.stderr
            assert gh.token not in proc.stdout + proc.stderr + output.read_text()
            matrices = json.loads(output.read_text().partition("=")[2])
            built = {e["app"] for job, entries in matrices.items() if job.startswith("build") for e in entries}
            return sorted(built), proc.stderr

        yield gh, repo, run


def test_a_push_plan_diffs_from_the_last_successful_run_so_a_cancelled_runs_changes_are_built(push_plan):
    gh, repo, run = push_plan
    succeeded = git(repo, "rev-parse", "HEAD~2")
    gh.runs[("acme/images", "clusterimage.yml")] = [
        {"head_sha": "f" * 40, "event": "push", "status": "completed", "branch": "other"},
        {"head_sha": succeeded, "event": "push", "status": "success", "branch": "main"},
    ]
    apps, err = run()
    assert apps == ["calico", "helm"]
    assert f"the last successful run of clusterimage.yml on main is {succeeded}" in err
    assert f"diffing from {succeeded}, the last successful run, not" in err
    [ask] = gh.requests
    assert ask.path == "/repos/acme/images/actions/workflows/clusterimage.yml/runs"
    assert ask.query == {"branch": "main", "event": "push", "status": "success", "per_page": "1"}
    assert ask.headers["authorization"] == f"Bearer {gh.token}"
    # A branch name is a query value, whatever it holds.
    gh.runs[("acme/images", "clusterimage.yml")][1]["branch"] = "release/1.0 & more"
    assert run(GITHUB_REF_NAME="release/1.0 & more")[0] == ["calico", "helm"]
    # No successful run yet: the push's own `before`.
    gh.runs.clear()
    assert run()[0] == ["helm"]


def test_a_push_plan_diffs_from_before_when_the_last_success_is_no_ancestor_or_not_known(push_plan):
    gh, repo, run = push_plan
    gh.runs[("acme/images", "clusterimage.yml")] = [
        {"head_sha": "e" * 40, "event": "push", "status": "success", "branch": "main"},  # a force-pushed-away commit
    ]
    apps, err = run()
    assert apps == ["helm"] and "diffing from" not in err
    gh.requests.clear()
    apps, err = run(GITHUB_REF_NAME="")
    assert apps == ["helm"] and gh.requests == []
    assert "the last successful run needs GITHUB_REPOSITORY and GITHUB_REF_NAME" in err
    assert run(CIMG_WORKFLOW="../../issues")[0] == ["helm"] and gh.requests == []


@pytest.mark.parametrize("answer, tries, says", [
    ({"status": 502, "body": "<html>bad gateway</html>"}, 3, "answered HTTP 502"),
    ({"status": 404, "body": {"message": "Not Found"}}, 1, "answered HTTP 404"),
    ({"body": "<html>a proxy's login page</html>"}, 1, "the answer is not a list of workflow runs"),
    ({"body": {"workflow_runs": [{"head_sha": "HEAD~1"}]}}, 1, "GitHub returned 'HEAD~1', not a 40-hex commit SHA"),
], ids=["5xx-retried", "404", "not-json", "not-a-sha"])
def test_a_failed_last_success_lookup_warns_and_diffs_from_before(push_plan, answer, tries, says):
    gh, repo, run = push_plan
    gh.answer("/repos/acme/images/actions/", **answer)
    apps, err = run()
    assert apps == ["helm"]
    assert len(gh.requests) == tries
    assert says in err
    assert "could not look up the last successful run of clusterimage.yml on main; diffing from" in err


def test_an_unreachable_upstream_never_rebuilds_and_a_moved_one_names_what_moved():
    from clusterimg import plan as plan_mod
    from clusterimg.model import Arch, Target
    from clusterimg.registry import Published

    t = Target(app="a", version="v1", arch=Arch.ARM64, runner=("r",), context="c", name="r/a", build_args="")
    held = Published(digest="sha256:x", labels={plan_mod.EMBEDDED: "up/app:1@sha256:old up/tool:2@sha256:t"})
    assert plan_mod.embedded_refs({"r/a:v1-arm64": held, "other": None}) == ["up/app:1", "up/tool:2"]
    assert plan_mod.moved_upstream(t, held, {"up/app:1": None, "up/tool:2": {"arm64": "sha256:t"}}) is None
    assert plan_mod.moved_upstream(t, held, {"up/app:1": {"arm64": "sha256:new", "amd64": "sha256:old"}}) == (
        "up/app:1 moved from sha256:old to sha256:new"
    )
    assert plan_mod.moved_upstream(t, held, {"up/app:1": {"*": "sha256:old"}}) is None  # a single image, unchanged


def test_a_file_name_that_is_not_utf8_is_hashed_as_bytes(cli, tree):
    import os

    repo = tree()
    context = repo / "applications/calico/v3.26.1"
    path = os.path.join(os.fsencode(context), b"caf\xe9.yaml")
    with open(path, "wb") as fh:
        fh.write(b"kind: List\n")
    first = plan_json(cli, repo, "--all")["build"][0]["inputs"]
    with open(path, "wb") as fh:
        fh.write(b"kind: List  # changed\n")
    assert plan_json(cli, repo, "--all")["build"][0]["inputs"] != first


def test_a_2_gb_file_in_a_context_is_hashed_in_bounded_memory(tree):
    import resource
    import subprocess
    import sys

    from helpers import ROOT

    repo = tree()
    with open(repo / "applications/calico/v3.26.1/big.bin", "wb") as fh:
        fh.truncate(2 << 30)  # sparse: 2 GiB to read, nothing on disk

    def limited():
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    probe = ["-c", f"import sys; sys.path.insert(0, {str(ROOT / 'generator')!r}); from clusterimg.cli import main; "
                   f"sys.exit(main(['plan', '--repo', {str(repo)!r}, '--format', 'json']))"]
    proc = subprocess.run([sys.executable, *probe], capture_output=True, text=True, preexec_fn=limited, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    builds = json.loads(proc.stdout)["build"]
    assert len(builds) == 2 and len({b["inputs"] for b in builds}) == 2


# --- the event policy: plan --event ----------------------------------------------------------------------------------

BEFORE, LAST = "b" * 40, "c" * 40
EVENTS = [
    ("push", {"before": "0" * 40, "last_success": LAST}, {}),
    ("push", {"before": BEFORE, "last_success": LAST}, {"changed_from": LAST}),
    ("push", {"before": BEFORE, "last_success": "d" * 40}, {"changed_from": BEFORE}),
    ("push", {"before": BEFORE}, {"changed_from": BEFORE}),
    ("pull_request", {"base": BEFORE}, {"changed_from": BEFORE}),
    ("pull_request", {}, {}),
    ("workflow_dispatch", {"app": "calico"}, {"skip_unchanged": True}),
    ("workflow_dispatch", {"force": True}, {}),
    ("issue_comment", {"app": "calico", "version": "v1"}, {"skip_unchanged": True}),
    ("schedule", {}, {"cron": "*", "skip_unchanged": True, "adopt": True}),
    ("schedule", {"cron": "5 4 * * 1", "force": True}, {"cron": "5 4 * * 1"}),
    ("release", {"before": BEFORE}, {}),
]


@pytest.mark.parametrize(("event", "given", "chosen"), EVENTS, ids=[
    "push-new-branch", "push-after-a-cancelled-run", "push-last-success-not-an-ancestor", "push-no-lookup",
    "pull-request", "pull-request-without-base", "dispatch", "dispatch-forced", "comment", "schedule-adopts",
    "schedule-forced-with-its-cron", "other-event"])
def test_the_event_decides_what_to_plan(event, given, chosen):
    from clusterimg import plan

    got = plan.for_event(event, is_ancestor=lambda sha: sha == LAST, **given)
    fields = {"changed_from": None, "skip_unchanged": False, "adopt": False, "cron": None}
    assert {k: getattr(got, k) for k in fields} == fields | chosen


@pytest.mark.parametrize("args", [
    ["--event", "push", "--changed-from", "HEAD"], ["--event", "schedule", "--skip-unchanged"], ["--before", "x"],
    ["--force"]])
def test_event_and_its_flags_go_together(cli, tree, args):
    result = cli("plan", "--repo", tree(), *args)
    assert result.code == 2 and "Usage:" in result.err
