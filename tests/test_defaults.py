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


def test_a_script_started_without_settings_takes_the_data_files():
    proc = bash('echo "$CIMG_BUILDER $CIMG_TOOLS $CIMG_RETRIES $CIMG_TLS_VERIFY"', {})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [defaults.text(v) for v in (defaults.BUILDER, defaults.TOOLS, defaults.RETRIES,
                                                              defaults.TLS_VERIFY)]
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
