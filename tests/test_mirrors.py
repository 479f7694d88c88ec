"""mirrors: in clusterimage.yaml: what config accepts, and the fan-in step each mirror gets."""

import pytest

from helpers import snapshot

WORKFLOW = ".github/workflows/clusterimage.yml"
GHCR = "  - registry: ghcr.io\n    secrets: {username: GHCR_USERNAME, password: GHCR_TOKEN}\n"
HARBOR = (
    "  - registry: harbor.example.com:8443\n    repository: mirror/acme\n"
    "    secrets: {username: HARBOR_USER, password: HARBOR_TOKEN}\n    tls_verify: false\n"
)


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
