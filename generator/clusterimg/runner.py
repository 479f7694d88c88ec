"""The local twin of the actions: runs the same scripts with the tools already on PATH."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from . import defaults
from .errors import StepFailed
from .model import split_tag
from .paths import scripts_dir


def build(
    context: str | os.PathLike,
    image_tag: str,
    arch: str,
    *,
    file: str | os.PathLike | None = None,
    inputs: str | None = None,
    setup: str | os.PathLike | None = None,
    builder: str = defaults.BUILDER,
    push: bool = False,
    tls_verify: bool = defaults.TLS_VERIFY,
    retries: int = defaults.RETRIES,
    save_images: bool = True,
    evidence: bool = defaults.EVIDENCE,
) -> dict[str, str]:
    """Build `<image>:<version>-<arch>` from `image_tag` = `<image>:<version>`, after saving the images it embeds;
    push it when asked, and then write its SBOM unless evidence is off."""
    image, version = split_tag(image_tag)
    require("buildah", builder)
    env = {"CIMG_ARCH": arch, "CIMG_BUILDER": builder, "CIMG_IMAGE": image, "CIMG_VERSION": version}
    env |= common(tls_verify, retries)
    prepared = run("prepare.sh", env | {"CIMG_CONTEXT": str(context), "CIMG_FILE": str(file or ""),
                                        "CIMG_SETUP": str(setup or "")})
    where = {"CIMG_CONTEXT": prepared["context"], "CIMG_FILE": prepared["file"]}
    try:
        out = {}
        if save_images:
            # save.sh lists the images with this very interpreter and package, not with a copy it would install.
            with tempfile.TemporaryDirectory(prefix="clusterimg-") as tmp:
                gen = Path(tmp, "clusterimg-gen")
                gen.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m clusterimg "$@"\n')
                gen.chmod(0o755)
                out = run("save.sh", env | where | credentials() | {"CIMG_GEN": str(gen)})
        leg = {"CIMG_INPUTS": inputs or "", "CIMG_SAVED": str(save_images).lower(), "CIMG_PUSH": str(push).lower(),
               "CIMG_EMBEDDED": out.get("images", ""), "CIMG_PYTHON": sys.executable}
        out |= run("build.sh", env | where | credentials() | leg)
        if push:
            out |= run("push.sh", env | credentials() | {"CIMG_REF": out["image"]})
        if push and evidence:
            out |= run("sbom.sh", env | {"CIMG_REF": out["image"], "CIMG_DIGEST": out["digest"],
                                         "CIMG_EMBEDDED": out.get("images", ""), "CIMG_PYTHON": sys.executable})
    finally:
        shutil.rmtree(prepared["context"], ignore_errors=True)
    return out


def manifest(image_tag: str, arches: Iterable[str], *, inputs: Iterable[str] = (),
             tls_verify: bool = defaults.TLS_VERIFY, retries: int = defaults.RETRIES) -> dict[str, str]:
    """Publish `image_tag` = `<image>:<version>` as the list of its already pushed `-<arch>` images; with `inputs`
    (arch=digest), only images that carry those input digests."""
    image, version = split_tag(image_tag)
    require("buildah", "skopeo")
    env = {"CIMG_BUILDER": "buildah"} | common(tls_verify, retries)
    return run(
        "manifest.sh",
        env | credentials() | {"CIMG_IMAGE": image, "CIMG_VERSION": version, "CIMG_ARCHES": " ".join(arches),
                               "CIMG_INPUTS": " ".join(inputs)},
    )


def require(*tools: str) -> None:
    """The local twin uses the tools on PATH; the action's install.sh downloads them instead."""
    for tool in dict.fromkeys(tools):
        if not shutil.which(tool):
            raise StepFailed(f"{tool} not found on PATH; install it, or run the action, which downloads it")


def common(tls_verify: bool, retries: int) -> dict[str, str]:
    return {"CIMG_TLS_VERIFY": "true" if tls_verify else "false", "CIMG_RETRIES": str(retries)}


def credentials() -> dict[str, str]:
    return {
        "CIMG_USERNAME": os.environ.get("REGISTRY_USERNAME", ""),
        "CIMG_PASSWORD": os.environ.get("REGISTRY_PASSWORD", ""),
    }


def run(script: str, env: Mapping[str, str]) -> dict[str, str]:
    """Run one script; its log goes to stderr, its outputs come back as a dict."""
    with tempfile.TemporaryDirectory(prefix="clusterimg-") as tmp:
        outputs = Path(tmp) / "output"
        outputs.touch()
        full = {k: v for k, v in os.environ.items() if k not in ("GITHUB_OUTPUT", "GITHUB_PATH")}
        full |= {"GITHUB_OUTPUT": str(outputs)} | dict(env)
        try:
            proc = subprocess.Popen(
                ["bash", str(scripts_dir() / script)],
                env=full,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
        except OSError as e:
            raise StepFailed(f"{script}: cannot start bash: {e}") from e
        held = ""  # the newest error line: if the script fails right after it, it becomes the command's one line
        with proc.stdout:
            for line in proc.stdout:
                sys.stderr.write(held)
                held = line if line.startswith("error: ") else ""
                if not held:
                    sys.stderr.write(line)
        if proc.wait() != 0:
            last_error = held.removeprefix("error: ").strip()
            raise StepFailed(f"{script}: {last_error or f'exited with status {proc.returncode}'}")
        sys.stderr.write(held)
        return parse_outputs(outputs.read_text())


def parse_outputs(text: str) -> dict[str, str]:
    """GitHub's output file: NAME=VALUE lines, and NAME<<DELIMITER … DELIMITER for a value of several lines."""
    out: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line.partition("=")[0]:
            name, _, delimiter = line.partition("<<")
            lines_of_value = []
            for more in lines:
                if more == delimiter:
                    break
                lines_of_value.append(more)
            out[name] = "\n".join(lines_of_value)
        elif "=" in line:
            name, _, value = line.partition("=")
            out[name] = value
    return out
