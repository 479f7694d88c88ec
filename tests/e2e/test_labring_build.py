"""The template shapes of a labring-shaped tree build for real with buildah, through the action's own scripts."""

import shutil
from pathlib import Path

import pytest

from clusterimg.cli import main
from helpers import SCRIPTS_APPS, image_file, labring_tree, snapshot

pytestmark = pytest.mark.e2e


@pytest.fixture
def repo(tmp_path, monkeypatch):
    root = labring_tree(tmp_path / "labring")
    monkeypatch.chdir(root)  # the set-up script runs from the repository root, as on a runner
    yield root
    shutil.rmtree(SCRIPTS_APPS, ignore_errors=True)


def build(capsys, context, image, arch, *extra):
    code = main(["build", context, "--image", image, "--arch", arch, "--builder", "buildah", *extra])
    out = capsys.readouterr()
    return code, out.err


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_an_init_sh_only_template_writes_its_kubefile_and_builds_without_touching_the_checkout(
    repo, image, capsys, arch
):
    before = snapshot(repo)
    code, err = build(capsys, "applications/sealos/latest", f"{image}:v5.0.1", arch)
    assert code == 0, err[-2000:]
    assert image_file(f"{image}:v5.0.1-{arch}", "opt/built-for") == f"{arch} {image.rsplit('/', 1)[1]} v5.0.1\n"
    assert snapshot(repo) == before


def test_a_versioned_dir_with_only_init_sh_builds_as_itself(repo, image, capsys):
    code, err = build(capsys, "applications/kubegems/v1.22.2", f"{image}:v1.22.2", "arm64")
    assert code == 0, err[-2000:]
    assert image_file(f"{image}:v1.22.2-arm64", "v") == "v1.22.2\n"


def test_init_sh_that_needs_the_shared_helpers_builds_after_the_setup_script(repo, image, capsys):
    shutil.rmtree(SCRIPTS_APPS, ignore_errors=True)
    code, err = build(capsys, "applications/kube-state-metrics/latest", f"{image}:v2.10.1", "arm64")
    assert code == 1 and "init.sh arm64" in err and "failed" in err
    code, err = build(capsys, "applications/kube-state-metrics/latest", f"{image}:v2.10.1", "arm64",
                      "--setup", ".github/scripts/setup-apps.sh")
    assert code == 0, err[-2000:]
    assert image_file(f"{image}:v2.10.1-arm64", "opt/arch") == "arm64\n"


def test_a_template_whose_init_sh_writes_no_build_file_fails_with_one_line_naming_it(repo, image, capsys):
    ctx = repo / "applications/broken/latest"
    ctx.mkdir(parents=True)
    (ctx / "init.sh").write_text("echo nothing to write\n")
    code, err = build(capsys, "applications/broken/latest", f"{image}:v1", "amd64")
    assert code == 1
    expected = "no Dockerfile, Kubefile or Sealfile in applications/broken/latest after init.sh: init.sh did not write one"
    assert err.count(expected) == 1
    assert err.strip().splitlines()[-1] == f"error: prepare.sh: {expected}"


def test_the_setup_script_and_init_sh_never_see_registry_credentials(repo, image, capsys, monkeypatch):
    monkeypatch.setenv("REGISTRY_USERNAME", "ci")
    monkeypatch.setenv("REGISTRY_PASSWORD", "s3cret-pw")
    monkeypatch.setenv("CIMG_PASSWORD", "s3cret-pw")
    dump = repo.parent / "seen.env"
    (repo / ".github/scripts/setup-apps.sh").write_text(f"env > {dump}.setup\n")
    (repo / "applications/kubegems/v1.22.2/init.sh").write_text(
        f'env > {dump}.init\nprintf "FROM scratch\\nCOPY v ./v\\n" > Kubefile\necho "$3" > v\n'
    )
    code, err = build(capsys, "applications/kubegems/v1.22.2", f"{image}:v1.22.2", "amd64",
                      "--setup", ".github/scripts/setup-apps.sh")
    assert code == 0, err[-2000:]
    for which in ("setup", "init"):
        seen = Path(f"{dump}.{which}").read_text()
        assert "s3cret-pw" not in seen and "REGISTRY_USERNAME" not in seen, which
