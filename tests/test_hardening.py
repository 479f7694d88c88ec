"""The action's shell on its own: lock-refresh against a loopback GitHub, and secrets that must never leak."""

import os
import subprocess

import pytest

from fake_github import FakeGitHub
from helpers import ROOT, git, write_tree

SCRIPTS = ROOT / "scripts"
TOKEN = "ghs_test0000token0000never0000printed"
# clusterimg-gen stand-in: `lock --repo DIR` changes the pins, `workflows` changes nothing.
FAKE_GEN = '#!/bin/sh\nif [ "$1" = lock ]; then date +%s%N >> "$3/clusterimage.lock"; fi\n'


def clean_env(**env: str) -> dict[str, str]:
    """This process's environment without what a runner or the action would set, plus `env`."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CIMG_", "RUNNER_"))}
    return {**keep, **env}


@pytest.fixture
def refresh(tmp_path):
    """(fake GitHub, checkout, run): run(**env) runs lock-refresh.sh on a checkout whose origin is a bare repo."""
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True)
    repo = write_tree(tmp_path / "repo", {"clusterimage.lock": "pins\n", ".github/workflows/x.yml": "on: push\n"})
    git(repo, "init", "-q", "-b", "main")
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "tree")
    git(repo, "push", "-q", "origin", "main")
    gen = tmp_path / "clusterimg-gen"
    gen.write_text(FAKE_GEN)
    gen.chmod(0o755)
    with FakeGitHub() as gh:
        gh.token = TOKEN

        def run(**env: str) -> subprocess.CompletedProcess:
            env = clean_env(
                CIMG_TOKEN=TOKEN, CIMG_REPO=str(repo), CIMG_GEN=str(gen), CIMG_ACTION_PATH=str(ROOT),
                CIMG_RETRY_DELAY="0", GITHUB_REPOSITORY="acme/images", GITHUB_API_URL=gh.url, **env,
            )
            return subprocess.run(["bash", str(SCRIPTS / "lock-refresh.sh")], env=env, capture_output=True,
                                  text=True, timeout=120)  # fmt: skip

        yield gh, repo, run


def test_lock_refresh_sends_a_branch_name_with_a_quote_as_valid_json(refresh):
    gh, repo, run = refresh
    proc = run(CIMG_BRANCH='refresh"lock')
    assert proc.returncode == 0, proc.stderr
    assert gh.pulls == [("acme/images", 'refresh"lock', "main")]
    assert TOKEN not in proc.stdout + proc.stderr


def test_lock_refresh_takes_githubs_already_exists_422_as_the_open_pull_request(refresh):
    gh, repo, run = refresh
    assert run().returncode == 0
    git(repo, "switch", "-q", "main")  # the next scheduled run starts from a fresh checkout of main
    again = run()
    assert again.returncode == 0, again.stderr
    assert "a pull request from clusterimage/refresh-lock is already open" in again.stderr
    assert len(gh.pulls) == 1


def test_lock_refresh_on_a_detached_head_fails_instead_of_claiming_an_open_pull_request(refresh):
    gh, repo, run = refresh
    git(repo, "checkout", "-q", "--detach")
    proc = run()
    assert proc.returncode == 1, proc.stderr
    assert "already open" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: GitHub refused the pull request")
    assert '"field": "base"' in proc.stderr.splitlines()[-1] and not gh.pulls
