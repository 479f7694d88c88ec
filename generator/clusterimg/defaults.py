"""Every default the package, the action files and the scripts share, read from the one data file beside this module.

The action.yml inputs that carry a default are checked against `action_inputs()` in the test suite; the scripts' lib.sh
reads the file's top-level scalars itself to fill the settings in SCRIPT_SETTINGS that a caller left unset.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

DATA = json.loads(Path(__file__).with_name("defaults.json").read_text(encoding="utf-8"))

BUILDER: str = DATA["builder"]
TOOLS: str = DATA["tools"]
RETRIES: int = DATA["retries"]
TLS_VERIFY: bool = DATA["tls_verify"]
EVIDENCE: bool = DATA["evidence"]  # each build leg writes its SBOM and signs; each fan-in signs and reads back
SIGSTORE: str = DATA["sigstore"]  # public-good, or the path of a client trust config of another instance
LEGACY_SIGNATURES: bool = DATA["legacy_signatures"]  # each signing step also writes cosign's sha256-<hex>.sig
REGISTRY: str = DATA["registry"]
RUNNERS: dict[str, tuple[str, ...]] = {arch: tuple(labels) for arch, labels in DATA["runners"].items()}
SEALOS_VERSION: str = DATA["sealos"]["version"]
BUILDAH_VERSION: str = DATA["buildah"]["version"]  # the labring release tag that carries buildah.linux.<arch>

# What each script setting is called; every script reads CIMG_<NAME>.
SCRIPT_SETTINGS = {"CIMG_BUILDER": BUILDER, "CIMG_TOOLS": TOOLS, "CIMG_RETRIES": RETRIES, "CIMG_TLS_VERIFY": TLS_VERIFY,
                   "CIMG_RETRY_DELAY": DATA["retry_delay"], "CIMG_RETRY_MAX_DELAY": DATA["retry_max_delay"],
                   "CIMG_SAVE_PARALLEL": DATA["save_parallel"]}  # images (and blobs) the save step fetches at a time


def retry_delay(attempt: int) -> float:
    """Seconds to wait after failed attempt `attempt` (0-based): the delay doubles from CIMG_RETRY_DELAY up to the cap,
    as the scripts' `retry` waits."""
    first = float(os.environ.get("CIMG_RETRY_DELAY") or DATA["retry_delay"])
    return min(first * 2**attempt, float(os.environ.get("CIMG_RETRY_MAX_DELAY") or DATA["retry_max_delay"]))


@dataclass(frozen=True)
class Pin:
    """A third-party action the generated workflows use, pinned to a full commit SHA (refreshed by `lock`)."""

    action: str
    tag: str
    sha: str
    runtime: str  # the node runtime of that release; node20 is deprecated on GitHub's runners

    @property
    def uses(self) -> str:
        return f"{self.action}@{self.sha} # {self.tag}"


PINS: dict[str, Pin] = {name: Pin(name, **pin) for name, pin in DATA["actions"].items()}


def text(value: object) -> str:
    """A value as action.yml and the scripts spell it."""
    return json.dumps(value) if isinstance(value, bool) else str(value)


def action_inputs() -> dict[str, str]:
    """Action input name → its default: `tls_verify` is `tls-verify`, `sealos.url` is `sealos-url`."""
    inputs = {key.replace("_", "-"): text(DATA[key]) for key in ("builder", "tools", "retries", "tls_verify", "evidence",
                                                                        "sigstore", "legacy_signatures")}
    for tool in ("sealos", "buildah"):
        inputs.update({f"{tool}-{key}".replace("_", "-"): text(v) for key, v in DATA[tool].items()})
    return inputs


def fill(template: str, version: str, arch: str) -> str:
    """A download URL template with its {version} and {arch} filled in, as install.sh fills it."""
    return template.replace("{version}", version).replace("{arch}", arch)


def asset(template: str, version: str, arch: str) -> str:
    """The release asset name a download URL template names."""
    return fill(template, version, arch).rpartition("/")[2]
