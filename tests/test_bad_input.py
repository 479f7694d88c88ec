"""Bad input: exit 2, one line naming file, key and value, no traceback, nothing written."""

import os
import resource
import subprocess
import sys

import pytest

from helpers import KUBEFILE, ROOT, snapshot

CASES = {
    "template-dir-odd-name": ("repository: acme\napps:\n  calico:\n    template: 'odd dir x'\n", "apps.calico.template"),
    "template-dir-injection": ("repository: acme\napps:\n  calico:\n    template: 'odd dir $(id)'\n", "$("),
    "broken-yaml": ("repository: [acme\n", "clusterimage.yaml: line"),
    "not-a-mapping": ("- repository\n", "(top level)"),
    "unknown-key": ("repository: acme\nregistri: ghcr.io\n", "registri"),
    "unknown-app-key": ("repository: acme\napps:\n  calico:\n    arch: [amd64]\n", "apps.calico.arch"),
    "missing-repository": ("registry: ghcr.io\n", "repository"),
    "unknown-arch": ("repository: acme\narches: [amd64, riscv64]\n", "'riscv64'"),
    "unknown-runner-arch": ("repository: acme\nrunners:\n  s390x: big\n", "runners: 's390x'"),
    "cron-four-fields": ("repository: acme\nschedule: '0 3 * *'\n", "5 cron fields"),
    "cron-minute-60": ("repository: acme\nschedule: '60 3 * * 1'\n", "'60' is not within 0-59"),
    "cron-text": ("repository: acme\nschedule: weekly\n", "schedule"),
    "cron-dow-7": ("repository: acme\nschedule: '5 3 * * 7'\n", "within 0-6"),
    "illegal-repository": ("repository: Acme/Images\n", "'Acme/Images'"),
    "illegal-registry": ("repository: acme\nregistry: 'https://ghcr.io'\n", "registry"),
    "apps-dir-missing": ("repository: acme\napps_dir: apps\n", "apps_dir: 'apps'"),
    "apps-dir-escapes": ("repository: acme\napps_dir: ../elsewhere\n", "apps_dir"),
    "action-tag-not-sha": ("repository: acme\naction: acme/clusterimage-action@v1\n", "40-hex"),
    "action-dotdot": ("repository: acme\naction: ./../x\n", "action"),
    "shell-injection": ("repository: acme\nbranches: ['main$(curl evil)']\n", "$("),
    "expression-injection": ("repository: acme\napps:\n  calico:\n    build_args:\n      A: '${{ secrets.X }}'\n", "${{"),
    "backticks": ("repository: acme\nregistry: '`id`'\n", "`id`"),
    "newline": ('repository: acme\napps:\n  calico:\n    build_args:\n      A: "a\\nb"\n', "apps.calico.build_args.A"),
    "secret-name": ("repository: acme\nsecrets:\n  password: GITHUB_TOKEN\n", "GITHUB_TOKEN"),
    "secret-name-any-case": ("repository: acme\nsecrets:\n  password: github_token\n", "password: 'github_token'"),
    "bool-not-string": ("repository: acme\ntls_verify: 'no'\n", "tls_verify"),
    "evidence-not-bool": (
        "repository: acme\nevidence: 'yes'\n", "clusterimage.yaml: evidence: 'yes': expected true or false"
    ),
    "legacy-signatures-not-bool": (
        "repository: acme\nlegacy_signatures: 1\n", "clusterimage.yaml: legacy_signatures: '1': expected true or false"
    ),
    "sigstore-absolute": ("repository: acme\nsigstore: /etc/trust.json\n", "clusterimage.yaml: sigstore: '/etc/trust.json'"),
    "sigstore-missing": (
        "repository: acme\nsigstore: trust.json\n",
        "clusterimage.yaml: sigstore: 'trust.json': expected public-good or a client trust config file in the repository",
    ),
    "github-repo-dotdot": ("repository: acme\ngithub_repo: ../..\n", "github_repo: '../..'"),
    "sexagesimal-version": ("repository: acme\napps:\n  calico:\n    versions: [1:20]\n", "'1:20'"),
    "null-version": ("repository: acme\napps:\n  calico:\n    versions: [~]\n", "apps.calico.versions: None"),
    "duplicate-version": ("repository: acme\napps:\n  calico:\n    versions: [v1, v2, v1]\n", "each version once"),
    "pull-requests-value": (
        "repository: acme\npull_requests: forks\n",
        "clusterimage.yaml: pull_requests: 'forks': expected one of same-repo, hosted, all, off",
    ),
    "template-version-clash": (
        "repository: acme\napps:\n  calico:\n    versions: [v3.26.1]\n", "apps.calico.versions"
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("command", ["workflows", "plan"])
def test_bad_config_is_one_line_exit_2_and_writes_nothing(cli, tree, name, command):
    config, needle = CASES[name]
    files = {"applications/calico/v3.26.1/Kubefile": KUBEFILE}
    if name == "template-version-clash":
        files["applications/calico/latest/init.sh"] = "#!/bin/sh\n"
        files["applications/calico/latest/Kubefile"] = KUBEFILE
    repo = tree(files, config=config)
    before = snapshot(repo)
    result = cli(command, "--repo", repo)
    assert result.code == 2, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err
    assert needle in lines[0]
    if name not in ("template-version-clash",):
        assert lines[0].startswith("error: clusterimage.yaml: ")
    assert snapshot(repo) == before


@pytest.mark.parametrize(
    "files, needle",
    [
        ({"applications/Calico/v1/Kubefile": KUBEFILE}, "applications/Calico: skipped: app name 'Calico'"),
        ({"applications/calico/v1+x/Kubefile": KUBEFILE}, "applications/calico/v1+x: skipped: version 'v1+x'"),
    ],
)
def test_a_dir_whose_name_cannot_be_an_image_name_is_skipped_with_a_warning_and_lint_strict_fails(
    cli, tree, files, needle
):
    repo = tree({**files, "applications/helm/v3.14.0/Kubefile": KUBEFILE})
    result = cli("workflows", "--repo", repo)
    assert result.code == 0, result.err
    assert f"warning: {needle}" in result.err
    plan = cli("plan", "--repo", repo, "--format", "text")
    skipped_dir = needle.split(": skipped: ")[0]
    assert plan.code == 0 and "docker.io/acme/helm:v3.14.0-amd64" in plan.out
    assert f"  skipped  {skipped_dir}  " in plan.out
    assert cli("lint", "--repo", repo).code == 0
    strict = cli("lint", "--repo", repo, "--strict")
    assert strict.code == 1 and needle in strict.err


def test_a_build_arch_that_names_no_arch_is_one_line_exit_2(cli, tree):
    repo = tree({"applications/calico/v1/Kubefile": KUBEFILE, "applications/calico/v1/build_arch": "x86\n"})
    before = snapshot(repo)
    result = cli("workflows", "--repo", repo)
    assert result.code == 2
    assert result.err == "error: applications/calico/v1/build_arch: 'x86': expected one of amd64, arm64\n"
    assert snapshot(repo) == before


def _fifo(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)


def _dangling(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(path.parent / "nowhere")


def _directory(path):
    path.mkdir(parents=True)


def _latin1(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"FROM scratch\n# caf\xe9\n")


@pytest.mark.parametrize("name", ["Kubefile", "build_arch"])
@pytest.mark.parametrize("make, expected", [
    (_fifo, "expected a regular file"), (_dangling, "expected a readable regular file"),
    (_directory, "expected a regular file"), (_latin1, "expected UTF-8 text"),
])  # fmt: skip
def test_a_build_file_that_is_no_text_file_is_one_line_exit_2_without_hanging(cli, tree, name, make, expected):
    files = {"applications/calico/v1/Kubefile": KUBEFILE} if name != "Kubefile" else {}
    repo = tree({**files, "applications/calico/v1/manifests/a.yaml": "kind: List\n"})
    make(repo / "applications/calico/v1" / name)
    if name == "build_arch" and make is _latin1:
        expected = "expected UTF-8 text"
    result = cli("workflows", "--repo", repo)
    assert result.code == 2, result.err
    assert result.err == f"error: applications/calico/v1/{name}: {expected}\n" or (
        make is _dangling and result.err.startswith(f"error: applications/calico/v1/{name}: ")
        and result.err.endswith(f"{expected}\n")
    )


def test_debug_shows_the_traceback(tree):
    from clusterimg.cli import main
    from clusterimg.errors import ConfigError

    repo = tree(config="repository: acme\narches: [mips]\n")
    with pytest.raises(ConfigError):
        main(["--debug", "workflows", "--repo", str(repo)])


def test_missing_repository_can_come_from_the_flag(cli, tree):
    repo = tree(config=None)
    result = cli("workflows", "--repo", repo)
    assert result.code == 2
    # No clusterimage.yaml exists, so the error names the flag, not the file.
    assert result.err.startswith("error: no clusterimage.yaml in ") and "--repository" in result.err
    assert cli("workflows", "--repo", repo, "--repository", "acme").code == 0


@pytest.mark.parametrize(
    ("args", "tool"),
    [(["build", ".", "--image", "r.example/a:v1", "--arch", "amd64", "--builder", "sealos"], "sealos"),
     (["manifest", "r.example/a:v1", "--arch", "amd64"], "skopeo")],
)  # fmt: skip
def test_local_twin_names_a_missing_tool_before_running_anything(cli, tmp_path, monkeypatch, args, tool):
    # Only buildah is on PATH, as a stand-in that must never run.
    (tmp_path / "buildah").write_text("#!/bin/sh\ntouch ran\n")
    (tmp_path / "buildah").chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    result = cli(*args)
    assert result.code == 1
    assert result.err.strip() == f"error: {tool} not found on PATH; install it, or run the action, which downloads it"
    assert not (tmp_path / "ran").exists()


def bomb(key: str) -> str:
    """"Billion laughs" under `key`: nine levels of nine aliases, 9**9 strings once expanded."""
    levels = ["&a0 [" + ", ".join(["lol"] * 9) + "]"]
    levels += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    return f"{key}:\n" + "".join(f"  - {level}\n" for level in levels)


def _one_gib_of_memory():
    resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))


@pytest.mark.parametrize(("file", "text"), [
    ("clusterimage.yaml", "repository: acme\n" + bomb("branches")),
    ("clusterimage.yaml", "repository: acme\nbranches: &a [*a]\n"),
    ("clusterimage.lock", bomb("actions") + "buildah: {}\nsealos: {}\n"),
    ("applications/calico/v3.26.1/charts/calico/values.yaml", bomb("images")),
], ids=["config-bomb", "config-loop", "lock-bomb", "chart-values-bomb"])
def test_an_alias_bomb_or_loop_is_one_line_exit_2_in_bounded_time_and_memory(tree, file, text):
    repo = tree()
    (repo / file).parent.mkdir(parents=True, exist_ok=True)
    (repo / file).write_text(text)
    before = snapshot(repo)
    context = repo / "applications/calico/v3.26.1"
    args = ["images", str(context)] if "charts" in file else ["workflows", "--repo", str(repo)]
    proc = subprocess.run(
        [sys.executable, "-m", "clusterimg", *args], capture_output=True, text=True,
        timeout=30, preexec_fn=_one_gib_of_memory, env={**os.environ, "PYTHONPATH": str(ROOT / "generator")},
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.count("\n") == 1 and "alias" in proc.stderr, proc.stderr
    assert proc.stderr.startswith(f"error: {file.removeprefix('applications/calico/v3.26.1/')}: ")
    assert snapshot(repo) == before
