"""Builds from a `/build <app> <version>` comment: the workflow's shape, and scripts/comment.sh against a loopback API."""

import os
import secrets
import subprocess

import pytest

from clusterimg import yamlio
from clusterimg.runner import parse_outputs
from fake_github import FakeGitHub
from helpers import KUBEFILE, ROOT

WORKFLOW = ".github/workflows/clusterimage.yml"
REPO = "acme/cluster-images"
TOKEN = "ghs_" + secrets.token_hex(16)
DIGEST = "sha256:" + "ab" * 32
CONFIG = "repository: acme\ncomment_builds: true\n"
TWO_STAGES = {
    "applications/calico/v3.26.1/Kubefile": KUBEFILE,
    "applications/openebs/v3.9.0/Kubefile": "FROM docker.io/acme/calico:v3.26.1\n" + KUBEFILE.split("\n", 1)[1],
}


def workflow(cli, tree, config=CONFIG, files=None) -> dict:
    repo = tree(files, config=config)
    result = cli("workflows", "--repo", repo)
    assert result.code == 0, result.err
    return yamlio.load((repo / WORKFLOW).read_text())


# --- the generated workflow ------------------------------------------------------------------------------------------


def test_comment_builds_are_off_by_default(cli, tree):
    doc = workflow(cli, tree, config="repository: acme\n")
    assert "issue_comment" not in doc["on"]
    assert {"request", "reply"}.isdisjoint(doc["jobs"])


def test_comment_builds_must_be_true_or_false(cli, tree):
    repo = tree(config="repository: acme\ncomment_builds: yes please\n")
    result = cli("workflows", "--repo", repo)
    assert result.code == 2 and "comment_builds: 'yes please': expected true or false" in result.err
    assert not (repo / ".github").exists()


def test_comment_builds_trigger_on_new_comments_and_read_and_answer_them_in_jobs_of_their_own(cli, tree):
    doc = workflow(cli, tree)
    assert doc["on"]["issue_comment"] == {"types": ["created"]}
    request, reply = doc["jobs"]["request"], doc["jobs"]["reply"]
    assert request["if"].startswith("github.event_name == 'issue_comment' && (startsWith(github.event.comment.body")
    assert doc["jobs"]["plan"]["needs"] == "request"
    assert reply["if"] == "${{ !cancelled() && needs.request.result == 'success' && needs.request.outputs.app != '' }}"
    assert set(reply["needs"]) == set(doc["jobs"]) - {"reply", "keepalive"}
    # Each comment has a concurrency group of its own, so a later comment never cancels a pending build.
    assert doc["concurrency"]["group"].endswith("-${{ github.event.comment.id }}")


def test_only_the_request_and_reply_jobs_may_write_to_issues_and_pull_requests(cli, tree):
    doc = workflow(cli, tree, files=TWO_STAGES)
    for name, job in doc["jobs"].items():
        writes = {k for k, v in job["permissions"].items() if v == "write"}
        if name in ("request", "reply"):
            assert writes == {"issues", "pull-requests"}, name
        else:
            assert not writes & {"issues", "pull-requests"}, name


def test_no_job_checks_out_a_pull_request_and_the_comment_text_only_reaches_an_action_input(cli, tree):
    repo = tree(TWO_STAGES, config=CONFIG)
    assert cli("workflows", "--repo", repo).code == 0
    text = (repo / WORKFLOW).read_text()
    assert "refs/pull" not in text and "pull_request.head" not in text
    doc = yamlio.load(text)
    for name, job in doc["jobs"].items():
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/checkout@"):
                assert "ref" not in step["with"] and "repository" not in step["with"]
            assert "run" not in step or name == "keepalive"
    assert text.count("github.event.comment.body }}") == 1
    [step] = [s for s in doc["jobs"]["request"]["steps"] if s.get("id") == "request"]
    assert step["with"]["body"] == "${{ github.event.comment.body }}"


def test_every_job_after_the_plan_says_when_it_runs_since_other_events_skip_the_request_job(cli, tree):
    doc = workflow(cli, tree, files=TWO_STAGES)
    after = [n for n in doc["jobs"] if n.startswith(("build-", "manifest-"))]
    assert len(after) == 6
    for name in after:
        assert doc["jobs"][name]["if"].startswith("${{ !cancelled() && "), name
        assert "needs.plan.result == 'success' && " in doc["jobs"][name]["if"], name


def test_each_fan_in_job_hands_the_reply_what_it_published(cli, tree):
    doc = workflow(cli, tree, files=TWO_STAGES)
    fan_ins = [n for n in doc["jobs"] if n.startswith("manifest-")]
    for name in fan_ins:
        assert doc["jobs"][name]["outputs"]["published"] == (
            "${{ steps.publish.outputs.image }}@${{ steps.publish.outputs.digest }}"
        )
    [answer] = doc["jobs"]["reply"]["steps"][1:]
    assert answer["with"]["published"] == " ".join(f"${{{{ needs.{n}.outputs.published }}}}" for n in fan_ins)
    assert answer["with"]["failed"] == "${{ contains(needs.*.result, 'failure') }}"


def test_a_comment_build_plans_like_a_dispatch_of_the_app_version_it_names(cli, tree):
    doc = workflow(cli, tree)
    [plan] = [s for s in doc["jobs"]["plan"]["steps"] if s.get("id") == "plan"]
    assert plan["with"]["app"] == "${{ inputs.app || needs.request.outputs.app }}"
    assert plan["with"]["version"] == "${{ inputs.version || needs.request.outputs.version }}"


def test_plan_refuses_a_comment_event_without_app_and_version(cli, tree):
    result = cli("plan", "--repo", tree(), "--event", "issue_comment", "--app", "calico")
    assert (result.code, result.err) == (2, "error: a comment build needs app and version\n")


# --- scripts/comment.sh against a loopback GitHub ---------------------------------------------------------------------


@pytest.fixture
def github():
    with FakeGitHub() as gh:
        gh.token = TOKEN
        gh.roles = {"maria": "write", "mo": "maintain", "ada": "admin", "tri": "triage"}
        yield gh


@pytest.fixture
def comment(github, tmp_path):
    """Run comment.sh in one phase; returns (exit code, outputs, log)."""

    def run(phase: str, **env: str) -> tuple[int, dict, str]:
        output = tmp_path / "output"
        output.write_text("")
        full = {
            "PATH": os.environ["PATH"], "HOME": str(tmp_path), "GITHUB_API_URL": github.url,
            "GITHUB_REPOSITORY": REPO, "GITHUB_OUTPUT": str(output), "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_RUN_ID": "4242", "GITHUB_REF_NAME": "main", "GITHUB_SHA": "c0ffee" + "0" * 34,
            "CIMG_RETRY_DELAY": "0", "CIMG_PHASE": phase, "CIMG_TOKEN": TOKEN, "CIMG_ISSUE": "7",
            "CIMG_COMMENT_ID": "901", **env,
        }  # fmt: skip
        proc = subprocess.run(["bash", str(ROOT / "scripts/comment.sh")], env=full, capture_output=True, text=True,
                              cwd=tmp_path)
        log = proc.stdout + proc.stderr
        assert TOKEN not in log
        return proc.returncode, parse_outputs(output.read_text()), log

    return run


@pytest.mark.parametrize("body", [
    "/build calico v3.26.1",
    "/imagebuild_apps calico v3.26.1",  # labring's form
    "/build  calico\tv3.26.1 \r\n\r\n",  # blanks, and the line ends a browser sends
])  # fmt: skip
def test_a_writers_request_sets_app_and_version_after_an_eyes_reaction(comment, github, body):
    code, out, _ = comment("request", CIMG_BODY=body, CIMG_COMMENTER="maria")
    assert code == 0
    assert out == {"app": "calico", "version": "v3.26.1"}
    assert github.reactions == [(REPO, 901, "eyes")]
    assert github.comments == []
    [ask] = [r for r in github.requests if r.method == "GET"]
    assert ask.path == f"/repos/{REPO}/collaborators/maria/permission"
    assert ask.headers["authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize("login", ["mo", "ada"])
def test_maintain_and_admin_may_request_a_build(comment, login):
    assert comment("request", CIMG_BODY="/build calico v3.26.1", CIMG_COMMENTER=login)[1]["app"] == "calico"


@pytest.mark.parametrize("login", ["tri", "stranger", "dependabot[bot]", "-x", ""])
def test_anyone_without_write_access_gets_a_polite_refusal_and_no_build(comment, github, login):
    code, out, log = comment("request", CIMG_BODY="/build calico v3.26.1", CIMG_COMMENTER=login)
    assert code == 0 and out == {}
    [reply] = github.comments
    assert reply["issue"] == 7 and reply["body"].startswith("Thank you for the request. Only people with write access")
    assert "nothing was built" in reply["body"]
    assert "refused" in log


def test_a_login_the_api_does_not_know_is_refused(comment, github):
    github.fail(404, "error_404", prefix=f"/repos/{REPO}/collaborators/")
    code, out, _ = comment("request", CIMG_BODY="/build calico v3.26.1", CIMG_COMMENTER="ghost")
    assert code == 0 and out == {}
    assert github.comments[0]["body"].startswith("Thank you for the request.")


def test_an_api_that_cannot_answer_fails_the_step_instead_of_refusing(comment, github):
    github.fail(502, "error_404", prefix=f"/repos/{REPO}/collaborators/")
    code, out, log = comment("request", CIMG_BODY="/build calico v3.26.1", CIMG_COMMENTER="maria")
    assert code == 1 and out == {}
    assert "could not read the permission of maria" in log
    assert github.comments == []


HOSTILE = {
    "command-substitution": "/build calico $(touch {marker})",
    "backticks": "/build `touch {marker}` v1",
    "expression": "/build ${{{{ github.token }}}} v1",
    "expression-in-version": "/build calico ${{{{ secrets.REGISTRY_PASSWORD }}}}",
    "second-line": "/build calico v3.26.1\ntouch {marker}",
    "parent-dir": "/build ../../x v1",
    "parent-dir-version": "/build calico ../../x",
    "semicolon": "/build calico v1;touch {marker}",
    "extra-word": "/build calico v1 --force",
    "missing-version": "/build calico",
    "alone": "/build",
    "uppercase-app": "/build Calico v1",
    "dollar-brace": "/build ${{IFS}}calico v1",
    "nul-like": "/build calico v1\\x00",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_text_in_a_writers_comment_is_inert_and_answered_as_not_a_valid_request(comment, github, tmp_path,
                                                                                         name):
    marker = tmp_path / "pwned"
    code, out, _ = comment("request", CIMG_BODY=HOSTILE[name].format(marker=marker), CIMG_COMMENTER="maria")
    assert code == 0 and out == {}
    assert not marker.exists() and not (tmp_path / "x").exists()
    [reply] = github.comments
    assert reply["body"].startswith("This is not a valid request, so nothing was built. Write `/build <app> <version>`")
    assert "touch" not in reply["body"] and "${{" not in reply["body"]


@pytest.mark.parametrize("body", ["thanks!", "/builder is broken", " /build calico v1", ""])
def test_a_comment_that_is_no_request_gets_no_reaction_and_no_answer(comment, github, body):
    code, out, _ = comment("request", CIMG_BODY=body, CIMG_COMMENTER="maria")
    assert code == 0 and out == {}
    assert github.requests == []


def test_the_reply_lists_each_published_list_with_its_digest(comment, github):
    published = f"docker.io/acme/calico:v3.26.1@{DIGEST} ghcr.io/acme/calico:v3.26.1@{DIGEST} @ @"
    code, _, _ = comment("reply", CIMG_APP="calico", CIMG_VERSION="v3.26.1", CIMG_PLANNED="success",
                         CIMG_FAILED="false", CIMG_PUBLISHED=published)
    assert code == 0
    [reply] = github.comments
    assert reply["body"] == (
        "Built `calico` `v3.26.1` from `main` at c0ffee0 and published:\n\n| list | digest |\n| --- | --- |\n"
        f"| `docker.io/acme/calico:v3.26.1` | `{DIGEST}` |\n| `ghcr.io/acme/calico:v3.26.1` | `{DIGEST}` |\n\n"
        f"Run: https://github.com/{REPO}/actions/runs/4242"
    )


@pytest.mark.parametrize(("planned", "failed", "published", "start"), [
    ("failure", "true", "", "`calico` `v9` could not be planned, so nothing was built"),
    ("success", "true", "", "Building or publishing `calico` `v9` from `main` at c0ffee0 failed: https://github.com/"),
    ("success", "true", f"docker.io/acme/calico:v9@{DIGEST}", "Building or publishing `calico` `v9` from `main` at c0ffee0 failed"),
    ("success", "false", "", "Nothing to build: the published images of `calico` `v9` are current"),
])  # fmt: skip
def test_the_reply_says_why_nothing_or_not_everything_was_published(comment, github, planned, failed, published,
                                                                    start):
    code, _, _ = comment("reply", CIMG_APP="calico", CIMG_VERSION="v9", CIMG_PLANNED=planned, CIMG_FAILED=failed,
                         CIMG_PUBLISHED=published)
    assert code == 0
    [reply] = github.comments
    assert reply["body"].startswith(start)
    if failed == "true" and planned == "success":
        assert f"/{REPO}/actions/runs/4242" in reply["body"]
    assert (DIGEST in reply["body"]) == bool(published)
