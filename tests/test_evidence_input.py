"""The evidence module's own checks, before any registry or Sigstore is asked: bad input is one line and exit 2, and
the provenance names this run."""

import os
import subprocess
import sys

import pytest
from helpers import GITHUB

from clusterimg import evidence

SUBJECT = "ghcr.io/acme/app@sha256:" + "a" * 64


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CIMG_", "ACTIONS_"))}
    return subprocess.run([sys.executable, "-m", "clusterimg.evidence", *args], input="", capture_output=True,
                          text=True, env={**clean, **env})  # fmt: skip


@pytest.mark.parametrize("subject", ["ghcr.io/acme/app:v1", "ghcr.io/Acme/app@sha256:" + "a" * 64,
                                     "app@sha256:" + "a" * 64, "ghcr.io/acme/app@sha256:abc"])  # fmt: skip
def test_a_subject_that_is_not_a_lowercase_name_at_a_sha256_digest_exits_2_in_one_line(subject):
    proc = run("sign", subject, **GITHUB)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"error: evidence: subject: {subject!r}: expected a lowercase "
                                        "registry/repository@sha256:<64 hex>"]  # fmt: skip


def test_outside_a_github_run_the_missing_variables_are_named():
    proc = run("verify", SUBJECT)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: evidence: environment: GITHUB_SERVER_URL, GITHUB_REPOSITORY,")
    assert len(proc.stderr.splitlines()) == 1


def test_a_trust_config_that_cannot_be_read_exits_2(tmp_path):
    proc = run("verify", SUBJECT, **GITHUB, CIMG_SIGSTORE=str(tmp_path / "missing.json"))
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: evidence: CIMG_SIGSTORE: '{tmp_path / 'missing.json'}': expected")


def test_an_unreadable_sbom_exits_2(tmp_path):
    proc = run("sign", SUBJECT, str(tmp_path / "none.json"), **GITHUB)
    assert proc.returncode == 2
    assert "evidence: sbom:" in proc.stderr and len(proc.stderr.splitlines()) == 1


def test_the_provenance_names_the_workflow_commit_and_run():
    doc = evidence.provenance(evidence.github_env(GITHUB))
    build = doc["buildDefinition"]
    assert build["externalParameters"]["workflow"] == {
        "ref": "refs/heads/main", "repository": "https://github.com/acme/x", "path": ".github/workflows/build.yml"}
    assert build["resolvedDependencies"] == [
        {"uri": "git+https://github.com/acme/x@refs/heads/main", "digest": {"gitCommit": GITHUB["GITHUB_SHA"]}}]
    assert doc["runDetails"]["builder"]["id"] == "https://github.com/acme/x/.github/workflows/build.yml@refs/heads/main"
    assert doc["runDetails"]["metadata"]["invocationId"] == "https://github.com/acme/x/actions/runs/42/attempts/1"


def test_an_arch_gets_an_sbom_and_the_index_does_not(tmp_path):
    sbom = tmp_path / "bom.json"
    sbom.write_text('{"bomFormat": "CycloneDX"}')
    env = evidence.github_env(GITHUB)
    assert list(evidence.predicates(env, sbom)) == ["signature", "provenance", "sbom"]
    assert list(evidence.predicates(env, None)) == ["signature", "provenance"]


def test_legacy_signatures_other_than_true_or_false_exit_2():
    proc = run("sign", SUBJECT, **GITHUB, CIMG_LEGACY_SIGNATURES="yes")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == ["error: evidence: CIMG_LEGACY_SIGNATURES: 'yes': expected true or false"]
