"""Resolve: config, plan and lock → one flat struct with every choice made, so that rendering only formats it."""

from __future__ import annotations

import json
from dataclasses import dataclass

from .defaults import PINS, Pin
from .layout import CONTEXT_DIR, Job, Layout
from .lockfile import Lock, tool_versions
from .model import VENDORED, Arch, Config, Mirror, Plan, PullRequests, is_self_hosted


@dataclass(frozen=True, kw_only=True)
class Resolved:
    """Everything the generated files say, resolved: tool versions and sums, action refs, the checkout pin, runner
    labels, jobs and their needs. Field names are the template's names."""

    branches: str  # a JSON list
    schedules: list[str]
    layout: Layout
    plans: list[str]  # the plan jobs' ids, one a group of app-versions
    jobs: list[Job]
    needs: dict[str, list[str]]
    pull_requests: bool
    same_repo: str  # the condition of a job that runs a pull request's code, or ""
    runners: dict[Arch, str]
    plan_runner: str
    control_runner: str
    image_prefix: str
    apps_dir: str
    context_dir: str  # the expression that reads a build entry's context directory back
    setup: str | None
    checkout: str
    uses_plan: str
    uses_build: str
    uses_manifest: str
    uses_comment: str
    uses_mirror: str
    uses_lock: str
    builder: str
    tools: str
    sealos_version: str
    buildah_version: str
    sealos_sha256: dict[str, str]
    buildah_sha256: dict[str, str]
    registry: str
    tls_verify: str
    check_images: str
    save_images: str
    evidence: str
    signs: bool  # build legs and fan-ins sign, so they get an OIDC token
    sigstore: str
    legacy_signatures: str
    keepalive: bool
    username_secret: str
    password_secret: str
    comment_builds: bool
    reply_planned: str  # the condition that every plan job succeeded
    reply_needs: list[str]
    manifest_ids: list[str]
    mirrors: tuple[Mirror, ...]
    lock_refresh: str | None  # the cron of the lock-refresh workflow, if there is one
    action: str  # what the lock-refresh workflow regenerates with: the configured action, or vendored
    vendored: bool  # the workflows use a copy of this action in the repository


def resolve(config: Config, plan: Plan, lock: Lock | None) -> Resolved:
    layout = Layout.sized_for(plan, config.arches)
    jobs = layout.jobs()
    sealos_version, buildah_version = tool_versions(lock, config)
    no_sums = {a.value: "" for a in Arch}
    return Resolved(
        branches=json.dumps(list(config.branches)),
        schedules=config.schedules(sorted({t.app for t in plan.build} | set(config.apps))),
        layout=layout,
        plans=layout.plans,
        jobs=jobs,
        needs=needs(layout),
        pull_requests=config.pull_requests is not PullRequests.OFF,
        same_repo=_same_repo(config),
        runners={a: _runs_on(config, a) for a in config.arches},
        plan_runner=_runs_on(config, config.arches[0]),
        control_runner=_labels(config.runners[config.arches[0]]),
        image_prefix=f"{config.registry}/{config.repository}",
        apps_dir=config.apps_dir,
        context_dir=CONTEXT_DIR,
        setup=config.setup,
        checkout=checkout(lock).uses,
        uses_plan=_uses(config, "plan", lock),
        uses_build=_uses(config, "", lock),
        uses_manifest=_uses(config, "manifest", lock),
        uses_comment=_uses(config, "comment", lock),
        uses_mirror=_uses(config, "mirror", lock),
        uses_lock=_uses(config, "lock", lock),
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
        evidence=json.dumps(config.evidence),
        signs=config.evidence,
        sigstore=config.sigstore,
        legacy_signatures=json.dumps(config.legacy_signatures),
        keepalive=config.keepalive,
        username_secret=config.username_secret,
        password_secret=config.password_secret,
        comment_builds=config.comment_builds,
        reply_planned=" && ".join(f"needs.{p}.result == 'success'" for p in layout.plans),
        reply_needs=["request", *layout.plans, *(j.id for j in jobs)],
        manifest_ids=[j.id for j in jobs if j.kind != "build"],
        mirrors=config.mirrors,
        lock_refresh=config.lock_refresh,
        action=config.action or VENDORED,
        vendored=config.action is None,
    )


def expr(text: str) -> str:
    """A GitHub `${{ }}` expression built from generator data; the templates write their fixed ones as they are."""
    return "${{ " + text + " }}"


def runtime_warnings() -> list[str]:
    """GitHub is retiring node20 on its runners: a pin still on it needs a newer major."""
    return [f"{p.action}@{p.tag} runs on {p.runtime}; move to a release on node24" for p in PINS.values()
            if p.runtime == "node20"]


def checkout(lock: Lock | None) -> Pin:
    pin = PINS["actions/checkout"]
    if lock and pin.action in lock.actions:
        tag, sha = lock.actions[pin.action]
        return Pin(pin.action, tag, sha, pin.runtime)
    return pin


def needs(layout: Layout) -> dict[str, list[str]]:
    """Within a plan group, builds of stage N wait for stage N-1's lists; each fan-in waits for every build of its
    stage. Groups hold whole families, so no job waits for another group."""
    result = {}
    for group, plan in enumerate(layout.plans):
        for stage in range(layout.stages):
            before = [j.id for j in layout.manifest_jobs(stage - 1, group)] if stage else []
            builds = layout.build_jobs(stage, group)
            for job in builds:
                result[job.id] = [plan, *before]
            for job in layout.manifest_jobs(stage, group):
                result[job.id] = [plan, *[b.id for b in builds]]
    return result


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


def _uses(config: Config, sub: str, lock: Lock | None) -> str:
    action = config.action_ref
    ref = action.uses(sub)
    if action.local:
        # `$/` is GitHub's newer self-repository form, but nektos/act and GHES releases cannot resolve it yet.
        return ref + " # zizmor: ignore[self-repository]"
    # The lock's tag only while it names this very commit: a newer release moves the sha before the next `lock`.
    locked = lock.actions.get(action.repo) if lock else None
    tag = locked[0] if locked and locked[1] == action.sha else config.action_tag
    return f"{ref} # {tag}" if tag else ref
