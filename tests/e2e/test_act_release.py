"""This repository's release workflow, run by act on a tag push against a loopback GitHub.

Under act the workflow leaves out two steps, each guarded by `!env.ACT`: the test job's run of the whole suite
(this suite is what runs it) and the upload to PyPI (act has no OIDC token). Everything else runs: the stamp,
the build from the hashed release lock, the hand-over of dist/ between jobs, the release and the major tag. act
cannot fetch actions from GitHub here, so the artifact actions are stand-ins (tests/e2e/fakes/actions) that keep
dist/ in a directory of the test, and the PyPI action is one that fails the run if its step is not skipped.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fake_github import FakeGitHub  # noqa: E402
from helpers import ROOT, copy_action, git, tool  # noqa: E402

pytestmark = [pytest.mark.act, pytest.mark.e2e]
TOKEN = "ghs_" + secrets.token_hex(16)
ACTION = "acme/clusterimage-action"
FAKES = Path(__file__).parent / "fakes/actions"


def stand_ins() -> list[str]:
    """--local-repository for each third-party action release.yml pins, by its pinned ref."""
    workflow = (ROOT / ".github/workflows/release.yml").read_text()
    args = []
    for name, fake in (("actions/upload-artifact", "upload-artifact"), ("actions/download-artifact", "download-artifact"),
                       ("pypa/gh-action-pypi-publish", "pypi-publish")):
        (sha,) = re.findall(rf"uses: {name}@([0-9a-f]{{40}}) #", workflow)
        args += ["--local-repository", f"{name}@{sha}={FAKES / fake}"]
    return args


def test_release_workflow_under_act_skips_the_suite_and_pypi_upload_then_releases_and_moves_the_major_tag(tmp_path):
    act = tool("act")
    from clusterimg import __version__ as version

    repo = copy_action(tmp_path / "repo")
    shutil.copytree(ROOT / ".github", repo / ".github")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "remote", "add", "origin", f"https://github.com/{ACTION}.git")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "release")
    tag = f"v{version}"
    git(repo, "tag", tag)
    sha = git(repo, "rev-parse", "HEAD")
    major = tag.split(".")[0]
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"ref": f"refs/tags/{tag}", "ref_name": tag, "after": sha}))
    secrets_file = tmp_path / "secrets.env"
    secrets_file.write_text(f"GITHUB_TOKEN={TOKEN}\n")
    artifacts = tmp_path / "artifacts"

    with FakeGitHub() as gh:
        gh.token = TOKEN
        gh.tag(ACTION, major, "0" * 40)
        proc = subprocess.run(
            [act, "push", "-W", ".github/workflows/release.yml", "-e", str(event), "--secret-file",
             str(secrets_file), "-P", "ubuntu-24.04=-self-hosted", "--env", f"GITHUB_API_URL={gh.url}",
             "--env", f"TEST_ARTIFACTS={artifacts}", "--no-cache-server", *stand_ins()],
            cwd=repo, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        out = proc.stdout + proc.stderr
        (tmp_path / "act.log").write_text(out)
        assert proc.returncode == 0, out[-4000:]
        created = gh.created
        moved = gh.tags[(ACTION, major)]
    assert TOKEN not in out
    for job in ("test suite", "build sdist and wheel", "publish to PyPI", "GitHub release and major tag"):
        assert re.search(rf"\[release/{job} *\] 🏁  Job succeeded", out), job
    assert "Main Run the suite" not in out and "Main Upload to PyPI" not in out
    assert "Success - Main Fetch the sdist and wheel" in out
    # The release names the very commit, and the major tag moved to it through the API.
    assert f"- uses: {ACTION}@{sha} # {tag}\n" in created[(ACTION, tag)]["body"]
    assert moved == (sha, None)
    # The wheel handed to the upload job carries the same release.
    assert sorted(p.name for p in (artifacts / "dist").iterdir()) == [
        f"clusterimage_action-{version}-py3-none-any.whl", f"clusterimage_action-{version}.tar.gz"]
    with zipfile.ZipFile(artifacts / "dist" / f"clusterimage_action-{version}-py3-none-any.whl") as whl:
        assert json.loads(whl.read("clusterimg/release.json")) == {"repository": ACTION, "sha": sha, "tag": tag}
