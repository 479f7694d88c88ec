"""A released wheel names its release: zero config then uses that commit of the action instead of a vendored copy."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from clusterimg import __version__, release
from fake_github import FakeGitHub
from helpers import KUBEFILE, ROOT, copy_action, write_tree
from test_lint import actionlint, schema, workflow_parser, zizmor
from test_lock import ENV, seed

WORKFLOW = ".github/workflows/clusterimage.yml"
LOCK_WORKFLOW = ".github/workflows/clusterimage-lock.yml"
SHA = "d" * 40
ACTION = "acme/clusterimage-action"


@pytest.fixture
def released(tmp_path, monkeypatch):
    """This package as the release workflow builds it: with release.json beside its modules."""

    def stamp(data: dict | str = {"repository": ACTION, "sha": SHA, "tag": "v1.2.3"}) -> None:
        path = tmp_path / "release.json"
        path.write_text(data if isinstance(data, str) else json.dumps(data))
        monkeypatch.setattr(release, "FILE", path)

    stamp()
    return stamp


def uses(repo, file=WORKFLOW) -> list[str]:
    return [line.split("uses: ", 1)[1] for line in (repo / file).read_text().splitlines() if "uses: " in line]


def test_zero_config_from_a_release_uses_that_commit_of_the_action_and_copies_nothing(cli, tree, released):
    repo = tree(config="repository: acme\nlock_refresh: '1 2 * * 3'\n")
    result = cli("workflows", "--repo", repo)
    assert result.code == 0, result.err
    ours = [u for u in uses(repo) + uses(repo, LOCK_WORKFLOW) if not u.startswith("actions/")]
    assert sorted(set(ours)) == [
        f"{ACTION}/lock@{SHA} # v1.2.3", f"{ACTION}/manifest@{SHA} # v1.2.3", f"{ACTION}/plan@{SHA} # v1.2.3",
        f"{ACTION}@{SHA} # v1.2.3",
    ]
    assert not (repo / ".github/actions").exists()
    # The lock refresh regenerates from the action's own checkout, which has no release.json: it is told the action.
    step = yaml.safe_load((repo / LOCK_WORKFLOW).read_text())["jobs"]["lock"]["steps"][-1]
    assert step["with"]["action"] == f"{ACTION}@{SHA}"


def test_a_release_replaces_the_vendored_copy_an_earlier_source_install_wrote(cli, tree, released, monkeypatch):
    repo = tree()
    monkeypatch.setattr(release, "FILE", repo / "no-release.json")
    assert cli("workflows", "--repo", repo).code == 0
    assert (repo / ".github/actions/clusterimage/action.yml").is_file()
    released()
    result = cli("workflows", "--repo", repo)
    assert "removed .github/actions/clusterimage/action.yml" in result.out
    assert not [p for p in (repo / ".github/actions").rglob("*") if p.is_file()]


def test_action_vendored_keeps_the_copy_even_when_the_package_names_its_release(cli, tree, released):
    repo = tree(config="repository: acme\naction: vendored\n")
    assert cli("workflows", "--repo", repo).code == 0
    assert "./.github/actions/clusterimage # zizmor" in (repo / WORKFLOW).read_text()
    assert (repo / ".github/actions/clusterimage/scripts/plan.sh").is_file()
    assert (repo / ".github/actions/clusterimage/requirements/runner.txt").is_file()


def test_a_configured_action_wins_over_the_release_and_gets_no_tag_it_cannot_vouch_for(cli, tree, released):
    other = "e" * 40
    repo = tree(config=f"repository: acme\naction: {ACTION}@{other}\n")
    assert cli("workflows", "--repo", repo).code == 0
    assert f"{ACTION}@{other}\n" in (repo / WORKFLOW).read_text()
    assert SHA not in (repo / WORKFLOW).read_text()


def test_the_action_flag_overrides_config_and_release(cli, tree, released):
    repo = tree(config=f"repository: acme\naction: {ACTION}@{'e' * 40}\n")
    assert cli("workflows", "--repo", repo, "--action", "vendored").code == 0
    assert (repo / ".github/actions/clusterimage/action.yml").is_file()
    result = cli("workflows", "--repo", repo, "--action", "acme/clusterimage-action@v1")
    assert result.code == 2 and "40-hex" in result.err


def test_a_lock_tag_names_the_action_only_while_the_lock_holds_that_commit(cli, tree, released):
    repo = tree()
    lock = {
        "actions": {ACTION: {"sha": "f" * 40, "tag": "v1.0.0"}},
        "buildah": {"sha256": {"amd64": "a" * 64, "arm64": "b" * 64}, "version": "depend"},
        "sealos": {"sha256": {"amd64": "a" * 64, "arm64": "b" * 64}, "version": "5.1.1"},
    }
    (repo / "clusterimage.lock").write_text(yaml.safe_dump(lock))
    assert cli("workflows", "--repo", repo).code == 0
    assert f"{ACTION}@{SHA} # v1.2.3\n" in (repo / WORKFLOW).read_text()
    lock["actions"][ACTION] = {"sha": SHA, "tag": "v1.2.4-rc"}
    (repo / "clusterimage.lock").write_text(yaml.safe_dump(lock))
    assert cli("workflows", "--repo", repo).code == 0
    assert f"{ACTION}@{SHA} # v1.2.4-rc\n" in (repo / WORKFLOW).read_text()


def test_lock_pins_the_released_action_with_its_most_specific_tag(cli, tree, released, monkeypatch):
    for var in ENV:
        monkeypatch.delenv(var, raising=False)
    repo = tree()
    with FakeGitHub() as gh:
        seed(gh)
        gh.tag(ACTION, "v1", SHA)
        gh.tag(ACTION, "v1.2.3", SHA)
        result = cli("lock", "--repo", repo, "--api-url", gh.url)
    assert result.code == 0, result.err
    assert yaml.safe_load((repo / "clusterimage.lock").read_text())["actions"][ACTION] == {"sha": SHA, "tag": "v1.2.3"}


@pytest.mark.parametrize("text", [
    "{not json", json.dumps({"repository": ACTION, "sha": "v1", "tag": "v1.2.3"}),
    json.dumps({"repository": ACTION, "sha": SHA, "tag": "latest"}), json.dumps([ACTION]),
], ids=["not-json", "sha-not-a-commit", "tag-not-a-release", "not-an-object"])
def test_broken_release_metadata_is_one_line_naming_the_file(cli, tree, released, text):
    released(text)
    result = cli("workflows", "--repo", tree())
    assert result.code == 3, result.err
    assert "release.json" in result.err and result.err.count("\n") == 1 and "Traceback" not in result.err


# --- the release workflow's script and the wheel it builds ------------------------------------------------------------

RELEASE_SH = ROOT / ".github/scripts/release.sh"
VERSION = __version__
TOKEN = "ghs_" + "5" * 36


def release_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CIMG_"))}
    return {**env, "GITHUB_REF_NAME": f"v{VERSION}", "GITHUB_REPOSITORY": ACTION, "GITHUB_SHA": SHA,
            "CIMG_RETRY_DELAY": "0", **extra}


def release_sh(*args: str, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(cwd / ".github/scripts/release.sh"), *args], capture_output=True, text=True,
                          env=release_env(**env))


@pytest.fixture
def api(monkeypatch):
    with FakeGitHub() as gh:
        gh.token = TOKEN
        yield gh


def test_publish_creates_the_release_with_the_pinned_line_and_moves_the_major_tag(api):
    major = "v" + VERSION.split(".")[0]
    api.tag(ACTION, major, "0" * 40)
    proc = release_sh("publish", GITHUB_API_URL=api.url, GITHUB_TOKEN=TOKEN)
    assert proc.returncode == 0, proc.stderr
    body = api.created[(ACTION, f"v{VERSION}")]
    assert body["generate_release_notes"] is True
    assert f"- uses: {ACTION}@{SHA} # v{VERSION}\n" in body["body"]
    assert api.tags[(ACTION, major)] == (SHA, None)
    assert TOKEN not in proc.stderr + proc.stdout
    # A re-run (say, after the tag move failed) finds the release there and moves the tag again.
    proc = release_sh("publish", GITHUB_API_URL=api.url, GITHUB_TOKEN=TOKEN)
    assert proc.returncode == 0, proc.stderr
    assert "exists already" in proc.stderr


def test_publish_creates_the_major_tag_when_there_is_none(api):
    proc = release_sh("publish", GITHUB_API_URL=api.url, GITHUB_TOKEN=TOKEN)
    assert proc.returncode == 0, proc.stderr
    assert api.tags[(ACTION, "v" + VERSION.split(".")[0])] == (SHA, None)
    assert [r.method for r in api.requests if "/git/refs" in r.path] == ["PATCH", "POST"]


def test_a_refused_tag_move_fails_naming_the_command_that_moves_it_by_hand(api):
    api.fail(422, "error_422_ref_missing", prefix=f"/repos/{ACTION}/git/refs")
    proc = release_sh("publish", GITHUB_API_URL=api.url, GITHUB_TOKEN=TOKEN)
    assert proc.returncode == 1
    assert f"git push --force origin {SHA}:refs/tags/v" in proc.stderr


@pytest.mark.parametrize(("name", "value", "message"), [
    ("GITHUB_REF_NAME", "v9.9.9", "does not match version"),
    ("GITHUB_REF_NAME", "v1", "not a release tag"),
    ("GITHUB_SHA", "main", "not a commit SHA"),
])
def test_stamp_refuses_a_tag_or_commit_that_is_not_this_release(tmp_path, name, value, message):
    for rel in ("pyproject.toml", "generator/clusterimg/__init__.py", "generator/clusterimg/defaults.py",
                "generator/clusterimg/defaults.json", "scripts/lib.sh", ".github/scripts/release.sh"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, tmp_path / rel)
    proc = release_sh("stamp", cwd=tmp_path, **{name: value})
    assert proc.returncode == 1 and message in proc.stderr
    assert not (tmp_path / "generator/clusterimg/release.json").exists()
    assert release_sh("stamp", cwd=tmp_path).returncode == 0
    assert json.loads((tmp_path / "generator/clusterimg/release.json").read_text()) == {
        "repository": ACTION, "sha": SHA, "tag": f"v{VERSION}"}


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """The wheel the release workflow's build job makes, from a copy of this tree."""
    src = tmp_path_factory.mktemp("release") / "src"
    copy_action(src)
    shutil.copytree(ROOT / ".github", src / ".github")
    for step in (("stamp",), ("build", str(src / "dist"))):
        proc = release_sh(*step, cwd=src)
        assert proc.returncode == 0, proc.stderr
    (built,) = (src / "dist").glob("*.whl")
    return built


def test_a_workflow_generated_from_the_released_wheel_uses_its_commit_passes_every_linter_and_copies_nothing(
    wheel, tmp_path
):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin/python"), "install", "--quiet",
           "--disable-pip-version-check", "--no-deps"]
    subprocess.run([*pip, "--require-hashes", "-r", str(ROOT / "requirements/runner.txt"),
                    "-r", str(ROOT / "requirements/render.txt")], check=True)
    subprocess.run([*pip, str(wheel)], check=True)
    repo = tmp_path / "repo"
    write_tree(repo, {"clusterimage.yaml": "repository: acme\nlock_refresh: '1 2 * * 3'\n",
                      "applications/calico/v3.26.1/Kubefile": KUBEFILE})
    proc = subprocess.run([str(venv / "bin/clusterimg-gen"), "workflows", "--repo", str(repo)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.relative_to(repo).as_posix() for p in (repo / ".github").rglob("*") if p.is_file()) == [
        LOCK_WORKFLOW, WORKFLOW]
    text = (repo / WORKFLOW).read_text()
    for sub in ("", "/plan", "/manifest"):
        assert f"uses: {ACTION}{sub}@{SHA} # v{VERSION}\n" in text
    assert f"uses: {ACTION}/lock@{SHA} # v{VERSION}\n" in (repo / LOCK_WORKFLOW).read_text()
    workflows = sorted((repo / ".github/workflows").glob("*.yml"))
    assert zizmor(repo / ".github") == []
    assert actionlint(*workflows) == ""
    assert schema("workflows", *workflows) == ""
    assert workflow_parser(*workflows) == ""
