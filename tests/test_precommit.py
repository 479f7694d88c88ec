"""The pre-commit hooks this repository offers run real commands on the files that can make them fail."""

import re
import shlex

import pytest
import yaml

from helpers import ROOT

HOOKS = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}


def test_each_hook_is_an_installed_python_command_that_takes_no_file_names():
    assert set(HOOKS) == {"clusterimg-workflows", "clusterimg-lint"}
    for hook in HOOKS.values():
        assert {"id", "name", "entry", "language"} <= set(hook)
        assert hook["language"] == "python" and hook["pass_filenames"] is False
        assert shlex.split(hook["entry"])[0] == "clusterimg-gen"


@pytest.mark.parametrize(("hook", "path", "runs"), [
    ("clusterimg-workflows", "clusterimage.yaml", True),
    ("clusterimg-workflows", "clusterimage.lock", True),
    ("clusterimg-workflows", "applications/calico/v3.26.1/Kubefile", True),
    ("clusterimg-workflows", ".github/workflows/clusterimage.yml", True),
    ("clusterimg-workflows", ".github/actions/clusterimage/scripts/plan.sh", True),
    ("clusterimg-workflows", "README.md", False),
    ("clusterimg-lint", "applications/calico/latest/init.sh", True),
    ("clusterimg-lint", ".github/workflows/clusterimage.yml", False),
])
def test_hooks_run_when_a_file_they_read_changes(hook, path, runs):
    assert bool(re.search(HOOKS[hook]["files"], path)) is runs


def test_the_workflows_hook_fails_on_a_stale_workflow_and_the_lint_hook_on_an_unbuildable_dir(cli, tree):
    def hook(name, repo):
        return cli(*shlex.split(HOOKS[name]["entry"])[1:], *HOOKS[name].get("args", []), "--repo", repo)

    repo = tree()
    assert hook("clusterimg-workflows", repo).code == 1
    assert cli("workflows", "--repo", repo).code == 0
    assert hook("clusterimg-workflows", repo).code == 0
    assert hook("clusterimg-lint", repo).code == 0
    (repo / "applications/calico/v 1/Kubefile").parent.mkdir()
    (repo / "applications/calico/v 1/Kubefile").write_text("FROM scratch\n")
    assert hook("clusterimg-lint", repo).code == 1


def test_the_readme_snippet_names_these_hooks_and_a_placeholder_rev():
    readme = (ROOT / "README.md").read_text()
    snippet = readme.split("```yaml\n# .pre-commit-config.yaml\n", 1)[1].split("```", 1)[0]
    config = yaml.safe_load(snippet)
    (repo,) = config["repos"]
    assert repo["repo"].endswith("/clusterimage-action")
    assert {h["id"] for h in repo["hooks"]} == set(HOOKS)
    assert "the release tag" in snippet.split("rev:", 1)[1].splitlines()[0]
