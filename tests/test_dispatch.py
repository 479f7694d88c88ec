"""`dispatch` against a loopback GitHub: the request sent, where the repository comes from, every error one line."""

import subprocess

import pytest

from clusterimg import github
from clusterimg.errors import UserError
from fake_github import FakeGitHub

TOKEN = "ghp_test0000token0000never0000printed"
ENV = ("GITHUB_TOKEN", "GH_TOKEN", "GITHUB_API_URL", "GH_HOST", "GITHUB_JWT_TOKEN")
DISPATCHES = "/repos/acme/images/actions/workflows/clusterimage.yml/dispatches"


@pytest.fixture
def gh(monkeypatch):
    for var in ENV:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    with FakeGitHub() as fake:
        fake.token = TOKEN
        fake.workflows[("acme/images", "clusterimage.yml")] = {"app", "version", "force"}
        yield fake


def dispatch(cli, gh, *args):
    return cli("dispatch", *args, "--api-url", gh.url)


def posts(gh):
    return [r for r in gh.requests if r.method == "POST"]


def one_line_error(result, code=1):
    assert result.code == code, (result.out, result.err)
    assert result.err.count("\n") == 1 and "Traceback" not in result.err, result.err
    assert TOKEN not in result.out + result.err


def test_dispatch_posts_app_and_version_to_the_workflow_on_main(cli, gh):
    result = dispatch(cli, gh, "calico", "v3.26.1", "--github-repo", "acme/images")
    assert result.code == 0, result.err
    [req] = posts(gh)
    assert req.path == DISPATCHES
    assert req.json() == {"ref": "main", "inputs": {"app": "calico", "version": "v3.26.1"}}
    assert req.headers["authorization"] == f"Bearer {TOKEN}"
    assert req.headers["accept"] == "application/vnd.github+json"
    assert req.headers["x-github-api-version"] == "2022-11-28"
    assert req.headers["content-type"] == "application/json"
    assert result.out == "dispatched clusterimage.yml in acme/images on main: app=calico version=v3.26.1\n"
    assert TOKEN not in result.out + result.err


def test_force_adds_the_input_force_true_and_workflow_and_ref_are_chosen(cli, gh):
    gh.workflows[("acme/images", "rebuild.yml")] = {"app", "version", "force"}
    args = ("--github-repo", "acme/images", "--workflow", "rebuild.yml", "--ref", "release-1", "--force")
    assert dispatch(cli, gh, "calico", "v3.26.1", *args).code == 0
    [req] = posts(gh)
    assert req.path == "/repos/acme/images/actions/workflows/rebuild.yml/dispatches"
    assert req.json() == {"ref": "release-1", "inputs": {"app": "calico", "version": "v3.26.1", "force": "true"}}


def test_without_force_no_force_input_is_sent(cli, gh):
    gh.workflows[("acme/images", "clusterimage.yml")] = {"app", "version"}
    assert dispatch(cli, gh, "calico", "v1", "--github-repo", "acme/images").code == 0
    assert "force" not in posts(gh)[0].json()["inputs"]


def test_GH_TOKEN_works_when_GITHUB_TOKEN_is_unset(cli, gh, monkeypatch):
    monkeypatch.delenv("GITHUB_TOKEN")
    monkeypatch.setenv("GH_TOKEN", TOKEN)
    assert dispatch(cli, gh, "calico", "v1", "--github-repo", "acme/images").code == 0
    assert posts(gh)[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_api_url_from_GITHUB_API_URL(cli, gh, monkeypatch):
    monkeypatch.setenv("GITHUB_API_URL", gh.url)
    assert cli("dispatch", "calico", "v1", "--github-repo", "acme/images").code == 0
    assert len(posts(gh)) == 1


# --- the repository: from --github-repo, else from git remote origin -------------------------------------------------


def git_repo(path, remote: str | None):
    path.mkdir()
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    if remote:
        subprocess.run(["git", "-C", str(path), "remote", "add", "origin", remote], check=True)
    return path


@pytest.mark.parametrize("remote", [
    "https://github.com/acme/images.git",
    "https://github.com/acme/images",
    "https://github.com/acme/images/",
    "https://x-access-token:secret@github.com/acme/images.git",
    "git@github.com:acme/images.git",
    "git@github.com:acme/images",
    "ssh://git@github.com/acme/images.git",
    "ssh://git@ssh.github.com:443/acme/images.git",
    "https://ghe.example.com/acme/images.git",
    "git@ghe.example.com:acme/images.git",
])
def test_owner_and_name_are_parsed_from_every_remote_form(remote):
    assert github.parse_remote(remote) == "acme/images"


@pytest.mark.parametrize("remote", ["/srv/git/images.git", "images", "https://github.com/acme", "git@github.com:"])
def test_a_remote_that_names_no_repository_is_refused(remote):
    with pytest.raises(UserError, match="--github-repo"):
        github.parse_remote(remote)


def test_dispatch_reads_the_repository_from_git_origin(cli, gh, tmp_path):
    repo = git_repo(tmp_path / "checkout", "git@github.com:acme/images.git")
    result = dispatch(cli, gh, "calico", "v3.26.1", "--repo", repo)
    assert result.code == 0, result.err
    assert posts(gh)[0].path == DISPATCHES


def test_github_repo_in_config_wins_over_the_git_origin(cli, gh, tmp_path):
    repo = git_repo(tmp_path / "checkout", "git@gitlab.example.com:mirror/elsewhere.git")
    (repo / "clusterimage.yaml").write_text("repository: acme\ngithub_repo: acme/images\n")
    result = dispatch(cli, gh, "calico", "v3.26.1", "--repo", repo)
    assert result.code == 0, result.err
    assert posts(gh)[0].path == DISPATCHES


@pytest.mark.parametrize("slug", ["../..", "acme/..", "./images"])
def test_a_github_repo_in_config_that_is_no_github_name_is_exit_2_and_sends_nothing(cli, gh, tmp_path, slug):
    repo = git_repo(tmp_path / "checkout", "git@github.com:acme/images.git")
    (repo / "clusterimage.yaml").write_text(f"repository: acme\ngithub_repo: '{slug}'\n")
    result = dispatch(cli, gh, "calico", "v1", "--repo", repo)
    one_line_error(result, code=2)
    assert f"clusterimage.yaml: github_repo: '{slug}'" in result.err
    assert not gh.requests


@pytest.mark.parametrize("remote", ["https://github.com/../..", "git@github.com:acme/.."])
def test_a_remote_naming_dot_or_dotdot_is_refused(remote):
    with pytest.raises(UserError, match="--github-repo"):
        github.parse_remote(remote)


def test_credentials_in_a_remote_url_are_never_echoed(cli, gh, tmp_path):
    repo = git_repo(tmp_path / "checkout", "https://user:hunter2secret@github.com/just-one-part")
    result = dispatch(cli, gh, "calico", "v1", "--repo", repo)
    one_line_error(result, code=2)
    assert "hunter2secret" not in result.err and "--github-repo" in result.err


def test_without_a_remote_origin_the_error_says_to_pass_github_repo(cli, gh, tmp_path):
    repo = git_repo(tmp_path / "checkout", None)
    result = dispatch(cli, gh, "calico", "v1", "--repo", repo)
    one_line_error(result, code=2)
    assert "--github-repo OWNER/NAME" in result.err
    assert not gh.requests


# --- errors --------------------------------------------------------------------------------------------------------


def test_without_a_token_dispatch_is_exit_2_and_sends_nothing(cli, gh, monkeypatch):
    monkeypatch.delenv("GITHUB_TOKEN")
    result = dispatch(cli, gh, "calico", "v1", "--github-repo", "acme/images")
    one_line_error(result, code=2)
    assert "set GITHUB_TOKEN or GH_TOKEN" in result.err
    assert not gh.requests


@pytest.mark.parametrize(("args", "needle"), [
    (("Calico", "v1"), "APP"),
    (("calico", "v1 && id"), "VERSION"),
    (("calico", "v1", "--workflow", "../../x"), "--workflow"),
    (("calico", "v1", "--github-repo", "acme"), "OWNER/NAME"),
    (("calico", "v1", "--github-repo", "../.."), "OWNER/NAME"),
    (("calico", "v1", "--github-repo", "acme/.."), "OWNER/NAME"),
    (("calico", "v1", "--github-repo", "./images"), "OWNER/NAME"),
])
def test_bad_arguments_are_exit_2_and_send_nothing(cli, gh, args, needle):
    result = dispatch(cli, gh, *args, *(() if "--github-repo" in args else ("--github-repo", "acme/images")))
    assert result.code == 2 and needle in result.err
    assert not gh.requests


def test_bad_credentials_is_one_line(cli, gh):
    gh.token = "another-token"
    result = dispatch(cli, gh, "calico", "v1", "--github-repo", "acme/images")
    one_line_error(result)
    assert "bad credentials (401" in result.err


def test_unknown_repository_or_workflow_is_one_line(cli, gh):
    result = dispatch(cli, gh, "calico", "v1", "--github-repo", "acme/nope")
    one_line_error(result)
    assert result.err == "error: acme/nope workflow clusterimage.yml on main: not found (404)\n"


def test_an_input_the_workflow_does_not_declare_is_githubs_422_message(cli, gh):
    gh.workflows[("acme/images", "clusterimage.yml")] = {"app", "version"}
    result = dispatch(cli, gh, "calico", "v1", "--github-repo", "acme/images", "--force")
    one_line_error(result)
    assert '422 Unexpected inputs provided: ["force"]' in result.err


@pytest.mark.parametrize("answer", ["html-200", "redirect-to-html-200", "empty-202"])
def test_a_dispatch_not_answered_204_is_an_unexpected_response_not_dispatched(cli, gh, answer):
    if answer == "html-200":
        gh.answer(DISPATCHES, 200, "<html><body>Sign in</body></html>", ctype="text/html; charset=utf-8")
    elif answer == "redirect-to-html-200":
        gh.answer(DISPATCHES, 302, ctype=None, headers={"Location": f"{gh.url}/login"})
        gh.answer("/login", 200, "<html><body>Sign in</body></html>", ctype="text/html; charset=utf-8")
    else:
        gh.answer(DISPATCHES, 202, ctype=None)
    result = dispatch(cli, gh, "calico", "v1", "--github-repo", "acme/images")
    one_line_error(result)
    assert "acme/images workflow clusterimage.yml on main: unexpected response" in result.err
    assert "dispatched" not in result.out


def test_rate_limit_is_one_line_with_the_reset_time(cli, gh):
    gh.fail(403, "error_403_rate_limit", X_RateLimit_Remaining="0", X_RateLimit_Reset="1893456000")
    result = dispatch(cli, gh, "calico", "v1", "--github-repo", "acme/images")
    one_line_error(result)
    assert "rate limit exceeded (403); it resets at 2030-01-01 00:00:00 UTC" in result.err


def test_network_down_is_one_line(cli, gh):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    result = cli("dispatch", "calico", "v1", "--github-repo", "acme/images", "--api-url", url)
    one_line_error(result)
    assert f"cannot reach {url}" in result.err
