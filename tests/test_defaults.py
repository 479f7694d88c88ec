"""defaults.json is the one source of the defaults: the scripts fill unset settings from it, and the scripts' retry
waits as the package's registry lookups do."""

import os
import subprocess

import pytest

from clusterimg import defaults
from clusterimg.paths import scripts_dir


def bash(script: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", f'source "{scripts_dir()}/lib.sh"; {script}'], capture_output=True, text=True,
                          env={"PATH": os.environ["PATH"], **env})


@pytest.mark.parametrize("stamped", [False, True], ids=["package", "vendored-copy"])
def test_a_script_started_without_settings_takes_the_data_files(stamped, tmp_path):
    """lib.sh reads defaults.json without Python; each setting it fills must equal the package's reading."""
    names = list(defaults.SCRIPT_SETTINGS)
    script = 'load_defaults; echo ' + " ".join(f'"${name}"' for name in names)
    if stamped:  # the vendored copy's file starts with its header as a JSON key, and is re-indented
        from clusterimg.header import stamp
        from helpers import copy_action

        copy_action(tmp_path)
        path = tmp_path / "generator/clusterimg/defaults.json"
        path.write_text(stamp("generator/clusterimg/defaults.json", path.read_text(), "clusterimg-gen workflows"))
        proc = subprocess.run(["bash", "-c", f'source "{tmp_path}/scripts/lib.sh"; {script}'], capture_output=True,
                              text=True, env={"PATH": os.environ["PATH"]})
    else:
        proc = bash(script, {})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [defaults.text(v) for v in defaults.SCRIPT_SETTINGS.values()]
    proc = bash('echo "$CIMG_BUILDER $CIMG_TLS_VERIFY"', {"CIMG_BUILDER": "buildah", "CIMG_TLS_VERIFY": "false"})
    assert proc.stdout.split() == ["buildah", "false"]


@pytest.mark.parametrize(("delay", "cap"), [(None, None), ("1", "3"), ("0", "0"), ("5", "7")])
def test_the_scripts_retry_waits_as_the_registry_lookups_do(delay, cap, monkeypatch):
    env = {"CIMG_RETRIES": "5"}
    for name, value in (("CIMG_RETRY_DELAY", delay), ("CIMG_RETRY_MAX_DELAY", cap)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            env[name] = value
            monkeypatch.setenv(name, value)
    proc = bash('sleep() { echo "$1"; }; retry false', env)
    assert proc.returncode == 1
    assert [float(s) for s in proc.stdout.split()] == [defaults.retry_delay(n) for n in range(4)]


A, B = "a" * 64, "B" * 64
SUMS = [
    (f"{A}  sealos_5.1.1_linux_amd64.tar.gz\n", A),
    (f"{B} *sealos_5.1.1_linux_amd64.tar.gz\n", B.lower()),
    (f"{A}  other.tar.gz\n{B}  sealos_5.1.1_linux_amd64.tar.gz\n{A}  sealos_5.1.1_linux_amd64.tar.gz\n", B.lower()),
    (f"xyz  sealos_5.1.1_linux_amd64.tar.gz\n{A}  sealos_5.1.1_linux_amd64.tar.gz\n", A),
    (f"{A}  sealos_5.1.1_linux_amd64.tar.gz extra\n", None),
    (f"{A}  sealos_5.1.1_linux_amd64.tar.gz.sig\n", None),
    ("", None),
]


@pytest.mark.parametrize(("text", "want"), SUMS, ids=["plain", "binary-mode", "first-wins", "skips-non-hex",
                                                      "three-fields", "other-name", "empty"])
def test_install_and_lock_read_a_checksums_file_alike(text, want, tmp_path):
    from clusterimg import lock

    name = "sealos_5.1.1_linux_amd64.tar.gz"
    assert lock._checksums(text).get(name) == want
    sums = tmp_path / "sums.txt"
    sums.write_text(text)
    proc = bash(f'listed_sum {name} <"{sums}"', {})
    assert (proc.stdout.strip() or None) == want
