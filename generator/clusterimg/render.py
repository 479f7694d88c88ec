"""Rendering: a resolved workflow → {repo-relative path: file text}. It decides nothing, asks no network, and writes
nothing but jinja's bytecode cache."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from pathlib import Path

import jinja2

from . import __version__, paths
from .header import REGENERATE, header, stamp
from .model import LOCK_WORKFLOW_FILE, VENDOR_DIR, WORKFLOW_FILE
from .resolve import Resolved, expr


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates, keyed by their source's checksum, as Python keeps __pycache__: saves ~20 ms a run."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    directory = os.path.join(root, "clusterimg-gen", __version__)
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError:
        return None
    return jinja2.FileSystemBytecodeCache(directory) if os.access(directory, os.W_OK) else None


@functools.cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(paths.templates_dir())),
        block_start_string="<%",
        block_end_string="%>",
        variable_start_string="<<",
        variable_end_string=">>",
        comment_start_string="<#",
        comment_end_string="#>",
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - renders YAML, not HTML
        bytecode_cache=_bytecode_cache(),
    )
    env.globals.update(
        q=json.dumps,  # a JSON string is a valid, fully quoted YAML scalar
        json=lambda v: json.dumps(v) if len(v) > 1 else v[0],
        secret=lambda name: expr(f"secrets.{name}"),
        secret_unless_pr=lambda name: expr(f"github.event_name != 'pull_request' && secrets.{name} || ''"),
    )
    return env


def workflow(resolved: Resolved, command: str = REGENERATE) -> str:
    return _env().get_template("clusterimage.yml.j2").render(
        header=header(command=command), workflow_file=WORKFLOW_FILE, **_fields(resolved))


def vendored_action(command: str = REGENERATE) -> dict[str, str]:
    """A copy of this action for repos that name none: the workflow uses it as ./.github/actions/clusterimage."""
    root = paths.action_root()
    pkg = Path(__file__).resolve().parent
    files: dict[str, str] = {}
    for rel in ("action.yml", "manifest/action.yml", "plan/action.yml", "lock/action.yml", "comment/action.yml",
                "mirror/action.yml", "pyproject.toml", "requirements/runner.txt", "requirements/render.txt",
                "requirements/github.txt", "requirements/evidence.txt"):
        files[rel] = (root / rel).read_text(encoding="utf-8")
    for sub in ("scripts", "templates"):
        for path in sorted((root / sub).iterdir()):
            if path.is_file():
                files[f"{sub}/{path.name}"] = path.read_text(encoding="utf-8")
    for path in [*sorted(pkg.glob("*.py")), pkg / "defaults.json"]:
        files[f"generator/clusterimg/{path.name}"] = path.read_text(encoding="utf-8")
    return {f"{VENDOR_DIR}/{rel}": stamp(rel, text, command) for rel, text in files.items()}


def lock_workflow(resolved: Resolved, command: str = REGENERATE) -> str:
    return _env().get_template("clusterimage-lock.yml.j2").render(header=header(command=command), **_fields(resolved))


def render(resolved: Resolved, command: str = REGENERATE) -> dict[str, str]:
    """Every generated file; each header names `command`, the command that regenerates them."""
    files = {f".github/workflows/{WORKFLOW_FILE}": workflow(resolved, command)}
    if resolved.lock_refresh:
        files[f".github/workflows/{LOCK_WORKFLOW_FILE}"] = lock_workflow(resolved, command)
    if resolved.vendored:
        files.update(vendored_action(command))
    return files


def _fields(resolved: Resolved) -> dict:
    return {f.name: getattr(resolved, f.name) for f in dataclasses.fields(resolved)}
