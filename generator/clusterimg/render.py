"""Pure rendering: Config → {repo-relative path: file text}. No filesystem writes, no network."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import jinja2

from . import __version__, paths
from .layout import Layout
from .lock import Lock, tool_versions
from .model import (
    LOCK_WORKFLOW_FILE,
    MARKER,
    VENDOR_DIR,
    VENDORED,
    WORKFLOW_FILE,
    Arch,
    Config,
    Plan,
    PullRequests,
    is_self_hosted,
)
from .pins import DEFAULTS, Pin

REGENERATE = "clusterimg-gen workflows"


def regenerate(repository: str | None = None, action: str | None = None) -> str:
    """The command that regenerates the files, with the flags they were generated with."""
    flags = [f" --repository {repository}" if repository else "", f" --action {action}" if action else ""]
    return REGENERATE + "".join(flags)


def header(comment: str = "#", command: str = REGENERATE) -> str:
    return (
        f"{comment} {MARKER} {__version__}. Do not edit: change clusterimage.yaml instead.\n"
        f"{comment} Regenerate from the repository root with: {command}"
    )


def expr(text: str) -> str:
    """The one place a GitHub `${{ }}` expression is built from generator data."""
    return "${{ " + text + " }}"


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


def workflow(config: Config, plan: Plan, lock: Lock | None = None, command: str = REGENERATE) -> str:
    layout = Layout.sized_for(plan, config.arches)
    no_sums = {a.value: "" for a in Arch}
    checkout = _checkout(lock)
    sealos_version, buildah_version = tool_versions(lock, config)
    jobs = layout.jobs()
    return _env().get_template("clusterimage.yml.j2").render(
        header=header(command=command),
        branches=json.dumps(list(config.branches)),
        schedules=config.schedules(sorted({t.app for t in plan.build} | set(config.apps))),
        layout=layout,
        plans=layout.plans,
        jobs=jobs,
        needs=_needs(layout),
        pull_requests=config.pull_requests is not PullRequests.OFF,
        same_repo=_same_repo(config),
        runners={a: _runs_on(config, a) for a in config.arches},
        plan_runner=_runs_on(config, config.arches[0]),
        control_runner=_labels(config.runners[config.arches[0]]),
        image_prefix=f"{config.registry}/{config.repository}",
        apps_dir=config.apps_dir,
        setup=config.setup,
        checkout=checkout.uses,
        uses_plan=_uses(config, "plan", lock),
        uses_build=_uses(config, "", lock),
        uses_manifest=_uses(config, "manifest", lock),
        builder=config.builder.value,
        tools=config.tools.value,
        sealos_version=sealos_version,
        buildah_version=buildah_version,
        sealos_sha256=lock.sealos_sha256 if lock else no_sums,
        buildah_sha256=lock.buildah_sha256 if lock else no_sums,
        registry=config.registry,
        tls_verify=json.dumps(config.tls_verify),
        check_images=json.dumps(config.check_images),
        save_images=json.dumps(config.save_images),
        keepalive=config.keepalive,
        workflow_file=WORKFLOW_FILE,
        username_secret=config.username_secret,
        password_secret=config.password_secret,
        comment_builds=config.comment_builds,
        reply_needs=["request", *layout.plans, *(j.id for j in jobs)],
        reply_planned=" && ".join(f"needs.{p}.result == 'success'" for p in layout.plans),
        manifest_ids=[j.id for j in jobs if j.kind != "build"],
        uses_comment=_uses(config, "comment", lock),
        mirrors=config.mirrors,
        uses_mirror=_uses(config, "mirror", lock),
    )


def runtime_warnings() -> list[str]:
    """GitHub is retiring node20 on its runners: a pin still on it needs a newer major."""
    return [f"{p.action}@{p.tag} runs on {p.runtime}; move to a release on node24" for p in DEFAULTS.values()
            if p.runtime == "node20"]


def _checkout(lock: Lock | None) -> Pin:
    pin = DEFAULTS["actions/checkout"]
    if lock and pin.action in lock.actions:
        tag, sha = lock.actions[pin.action]
        return Pin(pin.action, tag, sha, pin.runtime)
    return pin


def _labels(labels: tuple[str, ...]) -> str:
    return labels[0] if len(labels) == 1 else json.dumps(list(labels))


def _runs_on(config: Config, arch: Arch) -> str:
    """runs-on of a job that runs a pull request's code: with pull_requests: hosted, a pull request's run of it goes
    to GitHub's runner for the arch instead of a self-hosted one."""
    labels = config.runners[arch]
    if config.pull_requests is not PullRequests.HOSTED or not is_self_hosted(labels):
        return _labels(labels)

    def literal(labels: tuple[str, ...]) -> str:
        return f"'{labels[0]}'" if len(labels) == 1 else f"fromJSON('{json.dumps(list(labels), separators=(',', ':'))}')"

    return expr(f"github.event_name == 'pull_request' && {literal(arch.default_runner)} || {literal(labels)}")


def _same_repo(config: Config) -> str:
    """The condition of a job that runs a pull request's code, with pull_requests: same-repo; else empty."""
    if config.pull_requests is not PullRequests.SAME_REPO:
        return ""
    return "github.event_name != 'pull_request' || github.event.pull_request.head.repo.full_name == github.repository"


def _needs(layout: Layout) -> dict[str, list[str]]:
    """Within a plan group, builds of stage N wait for stage N-1's lists; each fan-in waits for every build of its
    stage. Groups hold whole families, so no job waits for another group."""
    needs = {}
    for group, plan in enumerate(layout.plans):
        for stage in range(layout.stages):
            before = [j.id for j in layout.manifest_jobs(stage - 1, group)] if stage else []
            builds = layout.build_jobs(stage, group)
            for job in builds:
                needs[job.id] = [plan, *before]
            for job in layout.manifest_jobs(stage, group):
                needs[job.id] = [plan, *[b.id for b in builds]]
    return needs


def _uses(config: Config, sub: str, lock: Lock | None) -> str:
    ref = config.uses(sub)
    if ref.startswith("./"):
        # `$/` is GitHub's newer self-repository form, but nektos/act and GHES releases cannot resolve it yet.
        return ref + " # zizmor: ignore[self-repository]"
    path, _, sha = config.action_ref.partition("@")
    # The lock's tag only while it names this very commit: a newer release moves the sha before the next `lock`.
    locked = lock.actions.get("/".join(path.split("/")[:2])) if lock else None
    tag = locked[0] if locked and locked[1] == sha else config.action_tag
    return f"{ref} # {tag}" if tag else ref


def vendored_action(command: str = REGENERATE) -> dict[str, str]:
    """A copy of this action for repos that name none: the workflow uses it as ./.github/actions/clusterimage."""
    root = paths.action_root()
    pkg = Path(__file__).resolve().parent
    files: dict[str, str] = {}
    for rel in ("action.yml", "manifest/action.yml", "plan/action.yml", "lock/action.yml", "comment/action.yml",
                "mirror/action.yml", "pyproject.toml", "requirements/runner.txt", "requirements/github.txt"):
        files[rel] = (root / rel).read_text(encoding="utf-8")
    for sub in ("scripts", "templates"):
        for path in sorted((root / sub).iterdir()):
            if path.is_file():
                files[f"{sub}/{path.name}"] = path.read_text(encoding="utf-8")
    for path in sorted(pkg.glob("*.py")):
        files[f"generator/clusterimg/{path.name}"] = path.read_text(encoding="utf-8")
    return {f"{VENDOR_DIR}/{rel}": _stamp(rel, text, command) for rel, text in files.items()}


def _stamp(rel: str, text: str, command: str) -> str:
    if rel.endswith(".j2"):
        return "<# " + header("", command).replace("\n", " ") + " #>\n" + text
    if text.startswith("#!"):
        shebang, _, rest = text.partition("\n")
        return f"{shebang}\n{header(command=command)}\n{rest}"
    return f"{header(command=command)}\n{text}"


def lock_workflow(config: Config, lock: Lock | None, command: str = REGENERATE) -> str:
    return _env().get_template("clusterimage-lock.yml.j2").render(
        header=header(command=command),
        cron=config.lock_refresh,
        control_runner=_labels(config.runners[config.arches[0]]),
        checkout=_checkout(lock).uses,
        uses_lock=_uses(config, "lock", lock),
        action=config.action or VENDORED,
    )


def render(config: Config, plan: Plan, lock: Lock | None = None, command: str = REGENERATE) -> dict[str, str]:
    """Every generated file; each header names `command`, the command that regenerates them."""
    files = {f".github/workflows/{WORKFLOW_FILE}": workflow(config, plan, lock, command)}
    if config.lock_refresh:
        files[f".github/workflows/{LOCK_WORKFLOW_FILE}"] = lock_workflow(config, lock, command)
    if config.action is None:
        files.update(vendored_action(command))
    return files
