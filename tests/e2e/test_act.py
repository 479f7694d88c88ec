"""The generated pipeline, run for real by nektos/act in host mode against the loopback registry.

Each test runs the workflow that `clusterimg-gen workflows` wrote for a repo made from examples/, whose `action:` is
a copy of this repository. Skip locally with `pytest -m "not act"`; .ci/run always runs them.

The examples' workflow signs (evidence on) with a loopback Sigstore and OIDC endpoint (tests/node/sigstore_loopback.mjs),
routed there by the `sigstore:` key: the public Sigstore and GitHub's OIDC cannot be reached here. act sets no
GITHUB_WORKFLOW_REF, so the runs are given the one GitHub would set. The signing steps use this test venv's sigstore
(CIMG_EVIDENCE_PYTHON) instead of installing it per job; test_requirements.py covers that install. The fault and
lineage repos set `evidence: false`: they test held-back lists, and signing would only slow them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fake_github import FakeGitHub  # noqa: E402
from helpers import (  # noqa: E402
    CLAIMS,
    GITHUB,
    KUBEFILE,
    copy_action,
    image_file,
    localize_embedded,
    loopback_sigstore,
    tool,
    write_tree,
)

pytestmark = [pytest.mark.act, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ".github/workflows/clusterimage.yml"
PLATFORMS = ["-P", "ubuntu-24.04=-self-hosted", "-P", "ubuntu-24.04-arm=-self-hosted"]
REPO = "acme/x"
WORKFLOW_REF = f"{REPO}/{WORKFLOW}@refs/heads/main"
EVIDENCE = ROOT / "scripts" / "evidence.sh"


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env).stdout.strip()


@pytest.fixture(scope="session")
def act_bin():
    return tool("act")


@pytest.fixture(scope="session")
def sigstore(tmp_path_factory):
    """(trust config, env): the loopback Sigstore, and what a job with id-token: write gets, pointed at it."""
    claims = {**CLAIMS, "workflow_ref": WORKFLOW_REF, "job_workflow_ref": WORKFLOW_REF, "workflow": "cluster images"}
    with loopback_sigstore(tmp_path_factory.mktemp("sigstore"), claims) as (trust, token_url, request_token):
        yield trust, {"ACTIONS_ID_TOKEN_REQUEST_URL": token_url, "ACTIONS_ID_TOKEN_REQUEST_TOKEN": request_token,
                      "GITHUB_REPOSITORY": REPO, "GITHUB_WORKFLOW_REF": WORKFLOW_REF,
                      "CIMG_EVIDENCE_PYTHON": sys.executable}  # fmt: skip


@pytest.fixture(scope="session")
def user_repo(registry, public_registry, sigstore, tmp_path_factory) -> Path:
    """examples/ plus a copy of this repository as its action, with the workflow generated the way users get it."""
    repo = tmp_path_factory.mktemp("act") / "repo"
    (repo / "sigstore").mkdir(parents=True)
    shutil.copy(sigstore[0], repo / "sigstore/trust.json")
    shutil.copytree(ROOT / "examples" / "applications", repo / "applications")
    # The example's openebs is layered FROM its calico: point it at this test's registry.
    openebs = repo / "applications/openebs/v3.9.0/Kubefile"
    openebs.write_text(openebs.read_text().replace("docker.io/example/", f"{registry.host}/act/"))
    localize_embedded(repo, public_registry.host, tmp_path_factory.mktemp("upstream"))
    return generated(repo, registry, "sigstore: sigstore/trust.json\napps:\n  ingress-nginx:\n    versions: [v1.9.4]\n")


@pytest.fixture(scope="session")
def fault_repo(registry, tmp_path_factory) -> Path:
    """Two apps; flaky's arm64 leg fails while the repository holds flaky.fail, which is not one of its inputs."""
    repo = tmp_path_factory.mktemp("act-faults") / "repo"
    write_tree(repo, {
        "applications/good/v1/Kubefile": KUBEFILE,
        "applications/good/v1/manifests/a.yaml": "kind: List\n",
        "applications/flaky/v1/Kubefile": KUBEFILE,
        "applications/flaky/v1/manifests/a.yaml": "kind: List\n",
        "applications/flaky/v1/init.sh": (
            'if [[ $1 == arm64 && -e $GITHUB_WORKSPACE/flaky.fail ]]; then echo "arm64 broke" >&2; exit 1; fi\n'
        ),
        "flaky.fail": "the arm64 runner is broken\n",
    })  # fmt: skip
    return generated(repo, registry, "evidence: false\n")


@pytest.fixture(scope="session")
def lineage_repo(registry, tmp_path_factory) -> Path:
    """Two families of two stages: brokenbase's arm64 leg fails while the repository holds lineage.fail."""
    repo = tmp_path_factory.mktemp("act-lineage") / "repo"
    child = "FROM {}/act/{}:v1\nCOPY manifests ./manifests\n"
    write_tree(repo, {
        "applications/okbase/v1/Kubefile": KUBEFILE,
        "applications/okbase/v1/manifests/a.yaml": "kind: List\n",
        "applications/okchild/v1/Kubefile": child.format(registry.host, "okbase"),
        "applications/okchild/v1/manifests/b.yaml": "kind: List\n",
        "applications/brokenbase/v1/Kubefile": KUBEFILE,
        "applications/brokenbase/v1/manifests/a.yaml": "kind: List\n",
        "applications/brokenbase/v1/init.sh": (
            'if [[ $1 == arm64 && -e $GITHUB_WORKSPACE/lineage.fail ]]; then echo "arm64 broke" >&2; exit 1; fi\n'
        ),
        "applications/brokenchild/v1/Kubefile": child.format(registry.host, "brokenbase"),
        "applications/brokenchild/v1/manifests/b.yaml": "kind: List\n",
        "lineage.fail": "the arm64 runner is broken\n",
    })  # fmt: skip
    return generated(repo, registry, "evidence: false\n")


def generated(repo: Path, registry, apps: str) -> Path:
    """repo with a copy of this repository as its action, and the workflow generated the way users get it."""
    copy_action(repo / "clusterimage-action")
    (repo / "clusterimage.yaml").write_text(
        f"registry: {registry.host}\n"
        "repository: act\n"
        "action: ./clusterimage-action\n"
        "builder: buildah\n"
        "tools: system\n"
        "tls_verify: false\n"
        + apps
    )
    gen = subprocess.run(
        [sys.executable, "-m", "clusterimg", "workflows", "--repo", str(repo)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "generator")},
    )
    assert gen.returncode == 0, gen.stderr
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "example tree")
    return repo


TOKEN = "ghs_" + secrets.token_hex(16)


@pytest.fixture(scope="session")
def github_api():
    """The keepalive job talks to GitHub's API: here, a loopback stand-in that records the calls."""
    with FakeGitHub() as gh:
        gh.token = TOKEN
        yield gh


@pytest.fixture
def act(act_bin, user_repo, registry, public_registry, github_api, sigstore, tmp_path):
    """Run one event through act; returns (exit code, combined output)."""
    secrets_file = tmp_path / "secrets.env"
    secrets_file.write_text(
        f"REGISTRY_USERNAME={registry.username}\nREGISTRY_PASSWORD={registry.password}\nGITHUB_TOKEN={TOKEN}\n"
    )

    def run(event: str, payload: dict | None = None, inputs: dict | None = None, repo: Path = user_repo
            ) -> tuple[int, str]:
        cmd = [act_bin, event, "-W", WORKFLOW, "--secret-file", str(secrets_file), *PLATFORMS,
               "--env", f"GITHUB_API_URL={github_api.url}",
               "--env", f"SSL_CERT_FILE={public_registry.ca_bundle}",
               *(arg for key, value in sigstore[1].items() for arg in ("--env", f"{key}={value}"))]
        if payload is not None:  # act ignores --input when given an event file
            event_file = tmp_path / "event.json"
            event_file.write_text(json.dumps(payload))
            cmd += ["-e", str(event_file)]
        for key, value in (inputs or {}).items():
            cmd += ["--input", f"{key}={value}"]
        proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=1200)
        out = proc.stdout + proc.stderr
        (tmp_path / f"act-{event}.log").write_text(out)
        return proc.returncode, out

    return run


def tags(registry, name: str, referrers: bool = False) -> set[str]:
    """The image tags of act/name; with referrers, only the sha256-<hex> tags that list each digest's evidence."""
    proc = registry.skopeo("list-tags", f"docker://{registry.host}/act/{name}", check=False)
    found = set(json.loads(proc.stdout)["Tags"]) if proc.returncode == 0 else set()
    return {tag for tag in found if tag.startswith("sha256-") is referrers}


def platforms(registry, ref: str) -> list[str]:
    index = json.loads(registry.raw(ref))
    return sorted(f"{m['platform']['os']}/{m['platform']['architecture']}" for m in index["manifests"])


def entry_digest(registry, ref: str, arch: str) -> str:
    """The digest of `arch`'s entry in the list ref."""
    index = json.loads(registry.raw(ref))
    return next(m["digest"] for m in index["manifests"] if m["platform"]["architecture"] == arch)


def everything(registry) -> dict[str, bytes]:
    """Every tag of every example repository, with its raw manifest."""
    found = {}
    for app in ("calico", "helm", "ingress-nginx", "openebs"):
        for tag in tags(registry, app):
            found[f"{app}:{tag}"] = registry.raw(f"{registry.host}/act/{app}:{tag}")
    return found


def test_act_runs_the_workflow_clusterimg_gen_writes_for_users(user_repo):
    check = subprocess.run(
        [sys.executable, "-m", "clusterimg", "workflows", "--repo", str(user_repo), "--check"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "generator")},
    )
    assert check.returncode == 0, check.stdout
    assert "uses: ./clusterimage-action # " in (user_repo / WORKFLOW).read_text()


def test_pull_request_builds_and_pushes_nothing(act, registry, user_repo):
    before = everything(registry)
    base = git(user_repo, "rev-parse", "HEAD")
    manifest = user_repo / "applications/calico/v3.26.1/cni/custom-resources.yaml"
    manifest.write_text(manifest.read_text() + "# proposed change\n")
    git(user_repo, "commit", "-qam", "propose a calico change")
    head = git(user_repo, "rev-parse", "HEAD")
    code, out = act("pull_request", {"pull_request": {"base": {"sha": base}, "head": {"sha": head}}})
    assert code == 0, out[-4000:]
    assert registry.password not in out
    # Both legs built the changed app-version; neither pushed, and the fan-in never ran.
    for arch in ("amd64", "arm64"):
        assert f"Success - Main Build {registry.host}/act/calico:v3.26.1-{arch}" in out
    assert "Main Push" not in out and "Main SBOM" not in out and "Publish" not in out
    assert everything(registry) == before


def test_dispatch_builds_one_app_version_for_both_arches_and_publishes_the_signed_list(act, registry, public_registry,
                                                                                       sigstore):
    code, out = act("workflow_dispatch", inputs={"app": "calico", "version": "v3.26.1"})
    assert code == 0, out[-4000:]
    assert registry.password not in out
    assert tags(registry, "calico") == {"v3.26.1", "v3.26.1-amd64", "v3.26.1-arm64"}
    assert platforms(registry, f"{registry.host}/act/calico:v3.26.1") == ["linux/amd64", "linux/arm64"]
    assert tags(registry, "openebs") == set()
    # Each leg saved the embedded images into registry/, for its own arch only.
    for arch in ("amd64", "arm64"):
        ref = f"{registry.host}/act/calico:v3.26.1-{arch}"
        for name, tag in (("operator", "v1.30.4"), ("cni", "v3.26.1"), ("node", "v3.26.1")):
            link = f"registry/docker/registry/v2/repositories/upstream/{name}/_manifests/tags/{tag}/current/link"
            digest = image_file(ref, link)
            assert digest == entry_digest(registry, f"{public_registry.host}/upstream/{name}:{tag}", arch)
        # and wrote the SBOM of the digest it pushed (kept on the runner; act removes it with the job).
        pushed = "sha256:" + hashlib.sha256(registry.raw(ref)).hexdigest()
        assert f"SBOM of {ref}@{pushed}" in out
        assert re.search(rf"wrote \S+/clusterimg-sbom/calico_v3\.26\.1-{arch}\.cdx\.json \(\d+ bytes\)", out)

    # The list and each arch carry a verified signature and provenance, each arch its SBOM; attaching them left the
    # list as the fan-in published it: the same digest, no unknown/unknown entry.
    image = f"{registry.host}/act/calico"
    index = "sha256:" + hashlib.sha256(registry.raw(f"{image}:v3.26.1")).hexdigest()
    assert f"published {image}:v3.26.1@{index} (linux/amd64 linux/arm64)" in out
    assert f"| list | `{index}` | ✅ | ✅ | — |" in out
    assert read_back(registry, sigstore, f"{image}@{index}") == ["signature", "provenance"]
    for arch in ("amd64", "arm64"):
        digest = entry_digest(registry, f"{image}:v3.26.1", arch)
        assert f"| linux/{arch} | `{digest}` | ✅ | ✅ | ✅ |" in out
        assert read_back(registry, sigstore, f"{image}@{digest}", "--sbom") == ["signature", "provenance", "sbom"]
    assert read_back(registry, sigstore, f"{image}@{index}", GITHUB_REPOSITORY="evil/fork") == []
    # distribution 2.8 has no referrers API: one sha256-<hex> tag per digest lists its evidence.
    digests = {index, *(entry_digest(registry, f"{image}:v3.26.1", arch) for arch in ("amd64", "arm64"))}
    assert tags(registry, "calico", referrers=True) == {d.replace(":", "-") for d in digests}


def read_back(registry, sigstore, subject: str, *args: str, **extra: str) -> list[str]:
    """The kinds of evidence a consumer of this workflow's images finds verified (`evidence.sh verify`); [] if none."""
    env = {**os.environ, **GITHUB, **sigstore[1], "CIMG_SIGSTORE": str(sigstore[0]), "CIMG_TLS_VERIFY": "false",
           "CIMG_USERNAME": registry.username, "CIMG_PASSWORD": registry.password, **extra}  # fmt: skip
    proc = subprocess.run([str(EVIDENCE), "verify", subject, *args], capture_output=True, text=True, env=env)
    if proc.returncode:
        return []
    return [line.split()[1] for line in proc.stdout.splitlines() if not line.startswith("::")]


def test_dispatch_of_a_version_config_does_not_list_builds_it_from_latest_in_a_copy(act, registry, user_repo):
    code, out = act("workflow_dispatch", inputs={"app": "ingress-nginx", "version": "v1.11.0"})
    assert code == 0, out[-4000:]
    assert tags(registry, "ingress-nginx") >= {"v1.11.0", "v1.11.0-amd64", "v1.11.0-arm64"}
    assert platforms(registry, f"{registry.host}/act/ingress-nginx:v1.11.0") == ["linux/amd64", "linux/arm64"]
    for arch in ("amd64", "arm64"):
        written = image_file(f"{registry.host}/act/ingress-nginx:v1.11.0-{arch}", "manifests/ingress-nginx.yaml")
        assert written.startswith(f"# ingress-nginx v1.11.0 for {arch}\n")
    assert git(user_repo, "status", "--porcelain") == ""  # init.sh ran in a copy


def push_event(repo: Path, rel: str, line: str) -> dict:
    """Append `line` to one file of repo and commit it: the push event of that commit."""
    before = git(repo, "rev-parse", "HEAD")
    path = repo / rel
    path.write_text(path.read_text() + line)
    git(repo, "commit", "-qam", f"touch {rel}")
    return {"ref": "refs/heads/main", "before": before, "after": git(repo, "rev-parse", "HEAD")}


def test_push_builds_only_the_app_version_it_changed(act, registry, user_repo):
    event = push_event(user_repo, "applications/openebs/v3.9.0/Kubefile", "# touched\n")
    seen = {app: tags(registry, app) for app in ("calico", "helm", "ingress-nginx")}
    code, out = act("push", event)
    assert code == 0, out[-4000:]
    assert registry.password not in out
    assert tags(registry, "openebs") == {"v3.9.0", "v3.9.0-amd64", "v3.9.0-arm64"}
    assert {app: tags(registry, app) for app in seen} == seen
    # openebs is layered on calico: each arch's leg built FROM that arch's calico image.
    for arch in ("amd64", "arm64"):
        assert f"parents: FROM {registry.host}/act/calico:v3.26.1-{arch}" in out
        parent = json.loads(registry.raw(f"{registry.host}/act/calico:v3.26.1-{arch}"))["layers"]
        child = json.loads(registry.raw(f"{registry.host}/act/openebs:v3.9.0-{arch}"))["layers"]
        assert [layer["digest"] for layer in child[: len(parent)]] == [layer["digest"] for layer in parent]


def test_a_push_that_changes_a_parent_rebuilds_the_parent_and_then_its_child(act, registry, user_repo):
    refs = {"calico": f"{registry.host}/act/calico:v3.26.1", "openebs": f"{registry.host}/act/openebs:v3.9.0"}
    old = {app: registry.raw(ref) for app, ref in refs.items()}
    event = push_event(user_repo, "applications/calico/v3.26.1/cni/custom-resources.yaml", "# a parent change\n")
    code, out = act("push", event)
    assert code == 0, out[-4000:]
    for app, ref in refs.items():
        assert registry.raw(ref) != old[app], app
    # Stage order: the child's legs start only after the parent's list is published.
    assert out.index("Success - Main Publish") < out.index(f"Main Build {registry.host}/act/openebs:v3.9.0-amd64")


def test_schedule_builds_every_app_version_and_build_arch_app_is_a_one_arch_list(act, registry, github_api):
    code, out = act("schedule")
    assert code == 0, out[-4000:]
    assert registry.password not in out and TOKEN not in out
    enables = [r for r in github_api.requests if r.method == "PUT"]
    assert [r.path.rsplit("/", 4)[1:] for r in enables] == [["actions", "workflows", "clusterimage.yml", "enable"]]
    assert enables[0].headers["authorization"] == f"Bearer {TOKEN}"
    for app, version in (("calico", "v3.26.1"), ("ingress-nginx", "v1.9.4"), ("openebs", "v3.9.0")):
        assert platforms(registry, f"{registry.host}/act/{app}:{version}") == ["linux/amd64", "linux/arm64"]
    assert platforms(registry, f"{registry.host}/act/helm:v3.14.0") == ["linux/amd64"]
    assert tags(registry, "helm") == {"v3.14.0", "v3.14.0-amd64"}


def test_a_second_scheduled_run_with_nothing_changed_launches_no_build_job(act, registry):
    before = everything(registry)
    code, out = act("schedule")
    assert code == 0, out[-4000:]
    assert "skipped 7 unchanged of 7 build(s)" in out
    assert "Main Build" not in out and "Publish" not in out
    assert everything(registry) == before


def test_dispatch_with_force_rebuilds_an_unchanged_image(act, registry):
    code, out = act("workflow_dispatch", inputs={"app": "helm", "version": "v3.14.0"})
    assert code == 0, out[-4000:]
    assert "Main Build" not in out
    code, out = act("workflow_dispatch", inputs={"app": "helm", "version": "v3.14.0", "force": "true"})
    assert code == 0, out[-4000:]
    assert registry.password not in out
    assert f"Success - Main Build {registry.host}/act/helm:v3.14.0-amd64" in out
    assert "Success - Main Publish" in out


def test_a_failed_leg_holds_back_only_its_own_list_and_the_next_run_finishes_it_without_force(act, registry, fault_repo):
    code, out = act("schedule", repo=fault_repo)
    assert code != 0  # the run is red: one leg failed
    # act does not always print the last lines of a step that fails at once; the step's own verdict it does print.
    assert re.search(r"build flaky:v1 \(arm64\)[^\]]*\]\s+❌  Failure - Main Prepare", out)
    assert platforms(registry, f"{registry.host}/act/good:v1") == ["linux/amd64", "linux/arm64"]
    assert tags(registry, "flaky") == {"v1-amd64"}
    assert "not published: " in out and "flaky:v1-arm64 is not in the registry" in out

    (fault_repo / "flaky.fail").unlink()
    git(fault_repo, "commit", "-qam", "the arm64 runner is fixed")
    code, out = act("schedule", repo=fault_repo)
    assert code == 0, out[-4000:]
    assert "skipped 3 unchanged of 4 build(s)" in out  # only flaky's arm64 leg builds again
    assert f"finishing {registry.host}/act/good:v1" not in out
    assert platforms(registry, f"{registry.host}/act/flaky:v1") == ["linux/amd64", "linux/arm64"]


def test_a_parent_that_fails_on_one_arch_holds_back_only_its_child_and_an_unrelated_child_is_published(
        act, registry, lineage_repo):
    code, out = act("schedule", repo=lineage_repo)
    assert code != 0  # the run is red: one leg failed
    # Stage 1 ran although a list of stage 0 was held back: the unrelated family is published whole.
    for app in ("okbase", "okchild"):
        assert platforms(registry, f"{registry.host}/act/{app}:v1") == ["linux/amd64", "linux/arm64"]
    assert tags(registry, "brokenbase") == {"v1-amd64"}
    # The child's amd64 leg built on this run's parent image; its arm64 leg found no parent of this run and built nothing.
    assert tags(registry, "brokenchild") == {"v1-amd64"}
    parent = f"{registry.host}/act/brokenbase:v1-arm64"
    assert (f"not built: {registry.host}/act/brokenchild:v1-arm64; parent {parent} is not in the registry "
            "(its build failed or was held back)") in out
    assert f"parent {registry.host}/act/brokenbase:v1-amd64 carries this run's inputs" in out
    assert f"not published: {registry.host}/act/brokenchild:v1 left untouched" in out
