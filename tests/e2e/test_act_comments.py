"""Comment builds and mirrors, run for real by nektos/act in host mode: a loopback GitHub API answers the workflow's
calls and records the reaction and the reply; two loopback registries with different credentials hold the lists."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fake_github import FakeGitHub  # noqa: E402
from helpers import KUBEFILE, ROOT, copy_action, git, tool, write_tree  # noqa: E402

pytestmark = [pytest.mark.act, pytest.mark.e2e]

WORKFLOW = ".github/workflows/clusterimage.yml"
PLATFORMS = ["-P", "ubuntu-24.04=-self-hosted", "-P", "ubuntu-24.04-arm=-self-hosted"]
GITHUB_REPO = "acme/cluster-images"
TOKEN = "ghs_" + secrets.token_hex(16)


def closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def comment_repo(root: Path, registry, mirrors: list[str]) -> Path:
    """Two apps, comment builds on, this repository as the action, the workflow generated as users get it."""
    repo = write_tree(root / "repo", {
        "applications/calico/v1/Kubefile": KUBEFILE,
        "applications/calico/v1/manifests/calico.yaml": "kind: List\n",
        "applications/helm/v2/Kubefile": KUBEFILE,
        "applications/helm/v2/manifests/helm.yaml": "kind: List\n",
    })  # fmt: skip
    copy_action(repo / "clusterimage-action")
    config = (
        f"registry: {registry.host}\nrepository: comments\naction: ./clusterimage-action\nbuilder: buildah\n"
        "tools: system\ntls_verify: false\ncheck_images: false\nsave_images: false\nschedule: false\n"
        "comment_builds: true\n"
        # Signing under act is covered by test_act.py; here it would only slow each comment build.
        "evidence: false\n"
    )
    if mirrors:
        config += "mirrors:\n" + "".join(
            f"  - registry: {host}\n    repository: mirrored\n"
            "    secrets: {username: MIRROR_USERNAME, password: MIRROR_PASSWORD}\n    tls_verify: false\n"
            for host in mirrors
        )
    (repo / "clusterimage.yaml").write_text(config)
    gen = subprocess.run([sys.executable, "-m", "clusterimg", "workflows", "--repo", str(repo)], capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "generator")})
    assert gen.returncode == 0, gen.stderr
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "tree")
    return repo


@pytest.fixture(scope="module")
def repo(registry, mirror_registry, tmp_path_factory) -> Path:
    return comment_repo(tmp_path_factory.mktemp("act-comments"), registry, [mirror_registry[0]])


@pytest.fixture
def github():
    with FakeGitHub() as gh:
        gh.token = TOKEN
        gh.roles = {"maria": "write"}
        yield gh


@pytest.fixture
def comment(registry, mirror_registry, github, tmp_path):
    """Post `body` as `login` on issue 7 and run the workflow for it with act: (exit code, output)."""
    secrets_file = tmp_path / "secrets.env"
    secrets_file.write_text(
        f"REGISTRY_USERNAME={registry.username}\nREGISTRY_PASSWORD={registry.password}\n"
        f"MIRROR_USERNAME={mirror_registry[1]}\nMIRROR_PASSWORD={mirror_registry[2]}\nGITHUB_TOKEN={TOKEN}\n"
    )

    def run(repo: Path, body: str, login: str = "maria") -> tuple[int, str]:
        event = tmp_path / "event.json"
        event.write_text(json.dumps({
            "action": "created",
            "issue": {"number": 7, "title": "Build calico", "pull_request": {"url": f"{github.url}/pulls/7"}},
            "comment": {"id": 901, "body": body, "user": {"login": login, "type": "User"},
                        "author_association": "OWNER"},  # what the workflow must not trust
            "repository": {"full_name": GITHUB_REPO, "default_branch": "main"},
        }))  # fmt: skip
        proc = subprocess.run(
            [tool("act"), "issue_comment", "-W", WORKFLOW, "-e", str(event), "--secret-file", str(secrets_file),
             *PLATFORMS, "--env", f"GITHUB_API_URL={github.url}", "--env", f"GITHUB_REPOSITORY={GITHUB_REPO}"],
            cwd=repo, capture_output=True, text=True, timeout=1200,
        )
        out = proc.stdout + proc.stderr
        (tmp_path / "act.log").write_text(out)
        for secret in (TOKEN, registry.password, mirror_registry[2]):
            assert secret not in out
        return proc.returncode, out

    return run


def raw(authfile: Path, ref: str, check: bool = True) -> bytes:
    proc = subprocess.run(["skopeo", "inspect", "--authfile", str(authfile), "--tls-verify=false", "--raw",
                           f"docker://{ref}"], capture_output=True, check=check)
    return proc.stdout if proc.returncode == 0 else b""


def digest_of(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_a_writers_comment_builds_publishes_mirrors_and_answers_with_the_digests(comment, repo, registry, mirror_registry,
                                                                                github):
    code, out = comment(repo, "/build calico v1")
    assert code == 0, out[-4000:]

    primary = registry.raw(f"{registry.host}/comments/calico:v1")
    assert sorted(m["platform"]["architecture"] for m in json.loads(primary)["manifests"]) == ["amd64", "arm64"]
    copied = raw(mirror_registry[3], f"{mirror_registry[0]}/mirrored/calico:v1")
    assert copied == primary  # the same list, so the same digest, naming the same arch images
    for entry in json.loads(copied)["manifests"]:
        assert digest_of(raw(mirror_registry[3], f"{mirror_registry[0]}/mirrored/calico@{entry['digest']}")) == entry["digest"]

    assert github.reactions == [(GITHUB_REPO, 901, "eyes")]
    [reply] = github.comments
    assert reply["issue"] == 7
    assert reply["body"].startswith("Built `calico` `v1` from `main` at ")
    assert f"| `{registry.host}/comments/calico:v1` | `{digest_of(primary)}` |" in reply["body"]
    assert f"| `{mirror_registry[0]}/mirrored/calico:v1` | `{digest_of(primary)}` |" in reply["body"]
    # The permission came from the API, asked with the job's token.
    [ask] = [r for r in github.requests if "/collaborators/" in r.path]
    assert ask.path == f"/repos/{GITHUB_REPO}/collaborators/maria/permission"
    assert ask.headers["authorization"] == f"Bearer {TOKEN}"


def test_the_same_request_again_builds_nothing_as_a_dispatch_would_and_says_so(comment, repo, registry, github):
    before = registry.raw(f"{registry.host}/comments/calico:v1")
    code, out = comment(repo, "/imagebuild_apps calico v1")
    assert code == 0, out[-4000:]
    assert "Main Build" not in out
    assert registry.raw(f"{registry.host}/comments/calico:v1") == before
    [reply] = github.comments
    assert reply["body"].startswith("Nothing to build: the published images of `calico` `v1` are current")


def test_a_request_for_an_app_the_tree_lacks_stops_at_the_plan_and_says_so(comment, repo, github):
    code, out = comment(repo, "/build nosuchapp v1")
    assert code != 0
    assert "error: applications/nosuchapp: no such app" in out
    assert "Main Build" not in out
    [reply] = github.comments
    assert reply["body"].startswith("`nosuchapp` `v1` could not be planned, so nothing was built")


def test_an_outsiders_comment_builds_nothing_and_gets_a_polite_refusal(comment, repo, registry, github):
    code, out = comment(repo, "/build helm v2", login="passer-by")
    assert code == 0, out[-4000:]
    assert "Main Plan" not in out and "Main Build" not in out
    assert not registry.has(f"{registry.host}/comments/helm:v2-amd64")
    [reply] = github.comments
    assert reply["body"].startswith("Thank you for the request. Only people with write access")


@pytest.mark.parametrize("body", [
    "/build helm $(touch {marker})",
    "/build `touch {marker}` v2\n${{{{ github.token }}}}",
    "/build ../../x ${{{{ secrets.REGISTRY_PASSWORD }}}}",
])  # fmt: skip
def test_hostile_text_in_a_comment_is_inert(comment, repo, registry, github, tmp_path, body):
    marker = tmp_path / "pwned"
    code, out = comment(repo, body.format(marker=marker))
    assert code == 0, out[-4000:]
    assert "Main Plan" not in out and "Main Build" not in out
    assert not marker.exists() and not (repo.parent / "x").exists() and not (repo / "x").exists()
    assert not registry.has(f"{registry.host}/comments/helm:v2-amd64")
    [reply] = github.comments
    assert reply["body"].startswith("This is not a valid request, so nothing was built.")
    assert git(repo, "status", "--porcelain") == ""


def test_a_comment_that_is_no_request_starts_no_job(comment, repo, github):
    code, out = comment(repo, "Thanks, that fixed it!")
    assert code == 0, out[-4000:]
    assert "Main Read the request" not in out and "Main Plan" not in out
    assert github.requests == []


def test_a_mirror_that_is_down_leaves_the_primary_published_and_the_run_failed(comment, registry, mirror_registry, github,
                                                                             tmp_path_factory):
    down = closed_port()
    repo = comment_repo(tmp_path_factory.mktemp("act-mirror-down"), registry, [down, mirror_registry[0]])
    code, out = comment(repo, "/build helm v2")
    assert code != 0
    assert f"error: login to {down} as " in out  # the mirror, named by its host

    primary = registry.raw(f"{registry.host}/comments/helm:v2")
    assert sorted(m["platform"]["architecture"] for m in json.loads(primary)["manifests"]) == ["amd64", "arm64"]
    assert raw(mirror_registry[3], f"{mirror_registry[0]}/mirrored/helm:v2") == primary  # the next mirror still got its copy
    [reply] = github.comments
    assert reply["body"].startswith("Building or publishing `helm` `v2` from `main` at ")
    assert f"| `{registry.host}/comments/helm:v2` | `{digest_of(primary)}` |" in reply["body"]
