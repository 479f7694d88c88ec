"""A released wheel names its release: zero config then uses that commit of the action instead of a vendored copy."""

import json

import pytest
import yaml

from clusterimg import release
from fake_github import FakeGitHub
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
