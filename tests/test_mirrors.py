"""mirrors: in clusterimage.yaml: what config accepts, and the fan-in step each mirror gets."""

import pytest

from clusterimg import yamlio
from helpers import snapshot

WORKFLOW = ".github/workflows/clusterimage.yml"
GHCR = "  - registry: ghcr.io\n    secrets: {username: GHCR_USERNAME, password: GHCR_TOKEN}\n"
HARBOR = (
    "  - registry: harbor.example.com:8443\n    repository: mirror/acme\n"
    "    secrets: {username: HARBOR_USER, password: HARBOR_TOKEN}\n    tls_verify: false\n"
)


def fan_in(cli, tree, mirrors: str) -> dict:
    repo = tree(config="repository: acme\nmirrors:\n" + mirrors)
    result = cli("workflows", "--repo", repo)
    assert result.code == 0, result.err
    return yamlio.load((repo / WORKFLOW).read_text())["jobs"]["manifest"]


def test_each_mirror_gets_a_step_of_its_own_after_the_list_is_published(cli, tree):
    job = fan_in(cli, tree, GHCR + HARBOR)
    names = [s["name"] for s in job["steps"]]
    assert names[1:] == [
        "Publish docker.io/acme/${{ matrix.app }}:${{ matrix.version }}",
        "Mirror to ghcr.io/acme/${{ matrix.app }}:${{ matrix.version }}",
        "Mirror to harbor.example.com:8443/mirror/acme/${{ matrix.app }}:${{ matrix.version }}",
    ]
    ghcr, harbor = job["steps"][2:]
    assert "run" not in ghcr and "run" not in harbor
    assert ghcr["with"]["digest"] == "${{ steps.publish.outputs.digest }}"
    assert ghcr["with"]["image"] == "docker.io/acme/${{ matrix.app }}"
    assert ghcr["with"]["mirror"] == "ghcr.io/acme/${{ matrix.app }}"
    assert (ghcr["with"]["mirror-username"], ghcr["with"]["mirror-password"]) == (
        "${{ secrets.GHCR_USERNAME }}", "${{ secrets.GHCR_TOKEN }}")
    assert ghcr["with"]["mirror-tls-verify"] is True and harbor["with"]["mirror-tls-verify"] is False
    assert harbor["with"]["mirror"] == "harbor.example.com:8443/mirror/acme/${{ matrix.app }}"
    assert (harbor["with"]["mirror-username"], harbor["with"]["mirror-password"]) == (
        "${{ secrets.HARBOR_USER }}", "${{ secrets.HARBOR_TOKEN }}")
    # The primary is read with its own secrets; a failed mirror does not stop the next one.
    assert harbor["with"]["password"] == "${{ secrets.REGISTRY_PASSWORD }}"
    for step in (ghcr, harbor):
        assert step["if"] == "${{ !cancelled() && steps.publish.outcome == 'success' }}"
        assert step["uses"] == "./.github/actions/clusterimage/mirror"


def test_no_mirrors_no_mirror_steps(cli, tree):
    repo = tree(config="repository: acme\n")
    assert cli("workflows", "--repo", repo).code == 0
    assert "mirror" not in (repo / WORKFLOW).read_text()


CASES = {
    "not-a-list": ("mirrors: ghcr.io\n", "mirrors: 'ghcr.io': expected a list"),
    "no-secrets": ("mirrors:\n  - registry: ghcr.io\n", "mirrors[0].secrets: None"),
    "one-secret": ("mirrors:\n  - registry: ghcr.io\n    secrets: {username: U}\n", "mirrors[0].secrets:"),
    "bad-secret": ("mirrors:\n  - registry: ghcr.io\n    secrets: {username: U, password: GITHUB_TOKEN}\n",
                   "mirrors[0].secrets.password: 'GITHUB_TOKEN'"),
    "no-registry": ("mirrors:\n  - secrets: {username: U, password: P}\n", "mirrors[0].registry"),
    "bad-registry": ("mirrors:\n  - registry: https://ghcr.io\n    secrets: {username: U, password: P}\n",
                     "mirrors[0].registry: 'https://ghcr.io'"),
    "bad-repository": ("mirrors:\n  - registry: ghcr.io\n    repository: Acme\n    secrets: {username: U, password: P}\n",
                       "mirrors[0].repository: 'Acme'"),
    "unknown-key": ("mirrors:\n  - registry: ghcr.io\n    secret: {username: U, password: P}\n", "mirrors[0].secret"),
    "tls-not-bool": ("mirrors:\n  - registry: ghcr.io\n    secrets: {username: U, password: P}\n    tls_verify: 'no'\n",
                     "mirrors[0].tls_verify: 'no'"),
    "the-primary": ("mirrors:\n  - registry: docker.io\n    secrets: {username: REGISTRY_USERNAME, password: REGISTRY_PASSWORD}\n",
                    "mirrors[0]: 'docker.io/acme'"),
    "twice": ("mirrors:\n" + GHCR + GHCR, "mirrors[1]: 'ghcr.io/acme'"),
    "primary-host-other-login": ("mirrors:\n  - registry: docker.io\n    repository: other\n"
                                 "    secrets: {username: U, password: P}\n", "expected the primary's secrets"),
    "injection": ("mirrors:\n  - registry: ghcr.io\n    secrets: {username: U, password: P}\n    repository: '$(id)'\n",
                  "$(id)"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_bad_mirror_is_one_line_naming_its_key_and_nothing_is_written(cli, tree, name):
    config, needle = CASES[name]
    repo = tree(config="repository: acme\n" + config)
    before = snapshot(repo)
    result = cli("workflows", "--repo", repo)
    assert result.code == 2, result.err
    assert result.err.count("\n") == 1 and result.err.startswith("error: clusterimage.yaml: "), result.err
    assert needle in result.err
    assert snapshot(repo) == before


def test_a_mirror_on_the_primary_registry_may_share_its_login(cli, tree):
    mirror = "  - registry: docker.io\n    repository: acme-mirror\n"
    mirror += "    secrets: {username: REGISTRY_USERNAME, password: REGISTRY_PASSWORD}\n"
    job = fan_in(cli, tree, mirror)
    assert job["steps"][-1]["with"]["mirror"] == "docker.io/acme-mirror/${{ matrix.app }}"
