"""install.sh against a loopback download server: nothing runs before its sha256 checks out."""

import hashlib
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from clusterimg.paths import scripts_dir

pytestmark = pytest.mark.e2e

VERSION = "9.9.9"
no_sealos = pytest.mark.skipif(bool(shutil.which("sealos")), reason="a real sealos on PATH would be used instead")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def trap(marker: Path) -> str:
    """A tool body that, were it ever run, leaves `marker` behind."""
    return f'#!/bin/sh\ntouch "{marker}"\n'


def on_step_path(install, tool: str) -> str:
    """The text of the tool that later steps find first on the PATH this step handed them."""
    for directory in reversed(install.github_path.read_text().splitlines()):
        if (Path(directory) / tool).is_file():
            return (Path(directory) / tool).read_text()
    raise AssertionError(f"no {tool} on the PATH handed to later steps")


def sealos_tarball(path: Path, body: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    binary = path.with_name("sealos")
    binary.write_text(body)
    binary.chmod(0o755)
    with tarfile.open(path, "w:gz") as tar:
        tar.add(binary, arcname="sealos")
    binary.unlink()
    return sha256(path)


@pytest.fixture
def release(download_server, tmp_path):
    """A sealos release laid out like GitHub's: a tarball and a checksums file beside it."""
    root, url = download_server
    marker = tmp_path / "ran"
    name = f"sealos_{VERSION}_linux_amd64.tar.gz"
    digest = sealos_tarball(root / f"v{VERSION}" / name, trap(marker))
    sums = f"{'0' * 64}  sealos_{VERSION}_linux_arm64.tar.gz\n{digest}  {name}\n"
    (root / f"v{VERSION}" / "sealos_checksums.txt").write_text(sums)
    (root / "buildah.linux.amd64").write_text(trap(marker))
    return {"url": url, "root": root, "marker": marker, "digest": digest, "tarball": root / f"v{VERSION}" / name,
            "buildah": sha256(root / "buildah.linux.amd64")}


@pytest.fixture
def install(release, tmp_path):
    cache = tmp_path / "toolcache"
    github_path = tmp_path / "github_path"
    github_path.touch()
    base = {
        "CIMG_ARCH": "amd64",
        "CIMG_BUILDER": "sealos",
        "CIMG_TOOLS": "download",
        "CIMG_SEALOS_VERSION": VERSION,
        "CIMG_SEALOS_URL": release["url"] + "/v{version}/sealos_{version}_linux_{arch}.tar.gz",
        "CIMG_SEALOS_CHECKSUMS_URL": release["url"] + "/v{version}/sealos_checksums.txt",
        "CIMG_BUILDAH_VERSION": "0.0.1",
        "CIMG_BUILDAH_SHA256": release["buildah"],
        "CIMG_BUILDAH_URL": release["url"] + "/buildah.linux.{arch}",
        "RUNNER_TOOL_CACHE": str(cache),
        "GITHUB_PATH": str(github_path),
    }

    def run(**env: str) -> subprocess.CompletedProcess:
        full = {**os.environ, **base, **env}
        return subprocess.run(["bash", str(scripts_dir() / "install.sh")], env=full, capture_output=True, text=True)

    run.cache = cache / "clusterimage"
    run.github_path = github_path
    return run


def test_install_refuses_a_sealos_tarball_that_does_not_match_the_checksums_file(install, release):
    (release["root"] / f"v{VERSION}" / "sealos_checksums.txt").write_text(f"{'1' * 64}  {release['tarball'].name}\n")

    proc = install()

    assert proc.returncode == 1
    assert f"error: sha256 mismatch for {release['tarball'].name}" in proc.stderr
    assert not release["marker"].exists()
    assert not (install.cache / "sealos" / VERSION / "amd64" / "sealos").exists()


def test_install_refuses_a_sealos_tarball_that_does_not_match_the_pinned_sha256(install, release):
    proc = install(CIMG_SEALOS_SHA256="2" * 64)

    assert proc.returncode == 1
    assert "sha256 mismatch" in proc.stderr
    assert not release["marker"].exists()


def test_install_verifies_sealos_and_puts_it_on_the_next_steps_path_without_running_it(install, release):
    proc = install()

    assert proc.returncode == 0, proc.stderr
    assert on_step_path(install, "sealos") == trap(release["marker"])
    assert not release["marker"].exists()


def test_install_reverifies_a_cache_hit_and_refuses_a_tampered_tarball(install, release):
    assert install().returncode == 0
    cached = install.cache / "sealos" / VERSION / "amd64" / release["tarball"].name
    sealos_tarball(cached, trap(release["marker"]) + "# tampered\n")

    proc = install()

    assert proc.returncode == 1
    assert "sha256 mismatch" in proc.stderr
    assert not release["marker"].exists()


def test_install_hands_later_steps_only_the_verified_tools_whatever_the_cache_holds(install, release):
    assert install().returncode == 0
    for planted in ("sealos/9.9.9/amd64/sealos", "sealos/9.9.9/amd64/skopeo", "buildah/0.0.1/amd64/sudo"):
        (install.cache / planted).write_text("#!/bin/sh\necho planted\n")
        (install.cache / planted).chmod(0o755)

    assert install().returncode == 0
    [handed] = install.github_path.read_text().splitlines()[1:]
    assert sorted(p.name for p in Path(handed).iterdir()) == ["buildah", "sealos"]
    assert on_step_path(install, "sealos") == on_step_path(install, "buildah") == trap(release["marker"])


def test_install_downloads_an_unpinned_buildah_on_every_run_whatever_the_cache_holds(install, release, tmp_path):
    buildah = release["root"] / "buildah.linux.amd64"
    summary = tmp_path / "summary.md"
    assert install(CIMG_BUILDER="buildah", CIMG_BUILDAH_SHA256="").returncode == 0
    # What an earlier job on this runner can leave behind: a binary and a sum that agrees with it.
    cached = install.cache / "buildah" / "0.0.1" / "amd64"
    cached.mkdir(parents=True, exist_ok=True)
    (cached / "buildah").write_text("#!/bin/sh\necho planted\n")
    (cached / "buildah.sha256").write_text(hashlib.sha256(b"#!/bin/sh\necho planted\n").hexdigest() + "\n")

    proc = install(CIMG_BUILDER="buildah", CIMG_BUILDAH_SHA256="", GITHUB_STEP_SUMMARY=str(summary))

    assert proc.returncode == 0, proc.stderr
    assert on_step_path(install, "buildah") == trap(release["marker"])
    assert "buildah 0.0.1 (amd64) is not pinned, so it is downloaded on every run" in proc.stderr
    assert sha256(buildah) in proc.stderr and sha256(buildah) in summary.read_text()
    assert "verified" not in proc.stderr
    assert not release["marker"].exists()


@pytest.mark.parametrize("tool", ["sealos", "buildah"])
def test_install_with_a_version_never_uses_a_tool_on_path_that_claims_it(install, release, tmp_path, tool):
    impostor = tmp_path / "impostor"
    impostor.mkdir()
    ran = tmp_path / "impostor-ran"
    for name, version in (("sealos", VERSION), ("buildah", "0.0.1")):
        (impostor / name).write_text(f'#!/bin/sh\ntouch "{ran}"\necho "{name} version {version}"\n')
        (impostor / name).chmod(0o755)
    pins = {"sealos": {"CIMG_SEALOS_SHA256": release["digest"]}, "buildah": {"CIMG_BUILDER": "buildah"}}

    proc = install(PATH=f"{impostor}:{os.environ['PATH']}", **pins[tool])

    assert proc.returncode == 0, proc.stderr
    assert on_step_path(install, tool) == trap(release["marker"])
    assert not ran.exists()
    assert not release["marker"].exists()


def test_install_refuses_a_buildah_that_does_not_match_the_pinned_sha256(install, release):
    proc = install(CIMG_BUILDER="buildah", CIMG_BUILDAH_VERSION="0.0.1", CIMG_BUILDAH_SHA256="3" * 64)

    assert proc.returncode == 1
    assert "sha256 mismatch for buildah 0.0.1 (amd64)" in proc.stderr
    assert not release["marker"].exists()


def test_install_asks_for_sealos_version_only_when_sealos_must_be_downloaded(install):
    assert install(CIMG_BUILDER="buildah", CIMG_SEALOS_VERSION="").returncode == 0

    proc = install(CIMG_SEALOS_VERSION="")

    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: sealos-version is empty: set it to download a verified sealos, or use tools=system"
    )


@no_sealos
def test_install_with_system_tools_names_the_missing_tool_in_one_line(install):
    proc = install(CIMG_TOOLS="system")

    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: sealos not found on PATH (tools=system)"


def test_install_gives_up_on_an_unreachable_download_after_bounded_retries(install, release):
    proc = install(CIMG_SEALOS_CHECKSUMS_URL=release["url"] + "/missing/{version}.txt", CIMG_RETRIES="2")

    assert proc.returncode == 1
    assert proc.stderr.count("attempt 1/2 failed") == 1
    assert "error: download failed:" in proc.stderr
