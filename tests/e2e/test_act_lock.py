"""The optional pin-refresh workflow, run by act: `lock` against a loopback GitHub, a pushed branch, a pull request."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fake_github import FakeGitHub  # noqa: E402
from helpers import KUBEFILE, ROOT, copy_action, git, pushed, tool, write_tree  # noqa: E402
from test_lock import seed  # noqa: E402

pytestmark = [pytest.mark.act, pytest.mark.e2e]
TOKEN = "ghs_" + secrets.token_hex(16)


def test_lock_refresh_workflow_pushes_a_branch_and_opens_a_pull_request(tmp_path):
    act = tool("act")
    origin = tmp_path / "origin.git"
    repo = write_tree(tmp_path / "repo", {
        "clusterimage.yaml": "repository: acme\naction: ./clusterimage-action\nlock_refresh: '41 4 * * 2'\n",
        "applications/calico/v3.26.1/Kubefile": KUBEFILE,
    })
    copy_action(repo / "clusterimage-action")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "generator")}
    subprocess.run([sys.executable, "-m", "clusterimg", "workflows", "--repo", str(repo)], check=True, env=env)
    pushed(repo, origin)
    secrets_file = tmp_path / "secrets.env"
    secrets_file.write_text(f"GITHUB_TOKEN={TOKEN}\n")

    with FakeGitHub() as gh:
        seed(gh)
        gh.token = TOKEN
        proc = subprocess.run(
            [act, "workflow_dispatch", "-W", ".github/workflows/clusterimage-lock.yml", "--secret-file",
             str(secrets_file), "-P", "ubuntu-24.04=-self-hosted", "--env", f"GITHUB_API_URL={gh.url}",
             "--env", "GITHUB_REPOSITORY=acme/cluster-images"],
            cwd=repo, capture_output=True, text=True, timeout=900,
        )
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-4000:]
        pulls = [r for r in gh.requests if r.method == "POST" and r.path.endswith("/pulls")]
    assert TOKEN not in out
    assert [r.path for r in pulls] == ["/repos/acme/cluster-images/pulls"]
    assert pulls[0].json()["head"] == "clusterimage/refresh-lock" and pulls[0].json()["base"] == "main"
    assert pulls[0].headers["authorization"] == f"Bearer {TOKEN}"
    changed = git(origin, "diff", "--name-only", "main", "clusterimage/refresh-lock").split()
    assert changed == [".github/workflows/clusterimage-lock.yml", ".github/workflows/clusterimage.yml",
                       "clusterimage.lock"]
    lock_text = git(origin, "show", "clusterimage/refresh-lock:clusterimage.lock")
    workflow = git(origin, "show", "clusterimage/refresh-lock:.github/workflows/clusterimage.yml")
    assert "actions/checkout@" + "1" * 40 + " # v" in workflow and "1" * 40 in lock_text
