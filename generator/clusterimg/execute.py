"""What the `plan` command does, as plain functions that return data: the click layer only collects and presents."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from . import config as config_mod
from . import git, inputs, lockfile, registry
from . import plan as plan_mod
from .layout import group_of
from .model import Config, Plan


@dataclass(frozen=True, kw_only=True)
class PlanArgs:
    repo: Path
    repository: str | None = None
    changed_from: str | None = None
    changed_to: str = "HEAD"
    app: str | None = None
    version: str | None = None
    skip_unchanged: bool = False
    adopt: bool = False
    cron: str | None = None
    times: bool = False  # stamp each build with its context's last commit time
    groups: int = 1
    group: int = 1
    # The event policy (plan.for_event) fills the selectors above from these, when an event is given.
    event: str | None = None
    before: str | None = None
    base: str | None = None
    last_success: str | None = None
    force: bool = False


@dataclass(frozen=True)
class PlanOutcome:
    config: Config
    plan: Plan
    accounting: list[str]
    warnings: list[str] = field(default_factory=list)  # for the log, as warnings
    notes: list[str] = field(default_factory=list)  # for the log


def plan(args: PlanArgs) -> PlanOutcome:
    notes: list[str] = []
    if args.event:
        chosen = plan_mod.for_event(
            args.event, before=args.before, base=args.base, last_success=args.last_success, app=args.app,
            version=args.version, cron=args.cron, force=args.force,
            is_ancestor=lambda sha: git.is_ancestor(args.repo, sha))  # fmt: skip
        args = replace(args, changed_from=chosen.changed_from, skip_unchanged=chosen.skip_unchanged,
                       adopt=chosen.adopt, cron=chosen.cron)
        notes += [chosen.note] if chosen.note else []
    config = config_mod.load(args.repo, {"repository": args.repository})
    tree = plan_mod.discover(args.repo, config)
    changed = None
    if args.changed_from and args.changed_from.strip("0"):
        changed = git.changed_files(args.repo, args.changed_from, args.changed_to)
    found = plan_mod.with_version(args.repo, config, tree, args.app, args.version) if args.app else tree.found
    if args.groups > 1:  # a group holds whole families, so it plans its stages and parents by itself
        own = group_of(plan_mod.build_plan(config, found), args.groups)
        found = tuple(av for av in found if own[av.key] == args.group - 1)
    scheduled = plan_mod.scheduled_by(config, args.cron) if args.cron else None
    selected = plan_mod.select(found, app=args.app, version=args.version, changed=changed, scheduled=scheduled)
    times = git.last_change_times(args.repo, sorted({av.context for av in selected})) if args.times else None
    result = digests(args.repo, config, found).fill(plan_mod.build_plan(config, selected), times)
    if args.skip_unchanged:
        result, skipped = skip_unchanged(config, result, args.adopt)
        notes += skipped
    return PlanOutcome(config, result, plan_mod.accounting(tree, config), tree.warnings(), notes)


def digests(repo: Path, config: Config, found) -> inputs.Digests:
    sealos_version, buildah_version = lockfile.tool_versions(lockfile.load(repo), config)
    build_args = {app: "\n".join(f"{k}={v}" for k, v in opts.build_args) for app, opts in config.apps.items()}
    return inputs.Digests(repo, found, builder=config.builder.value, sealos_version=sealos_version,
                          buildah_version=buildah_version, build_args=build_args)


def skip_unchanged(config: Config, result: Plan, adopt: bool) -> tuple[Plan, list[str]]:
    """The plan without the images the registry already holds for these inputs, and what was said about them."""
    images = registry.published([t.image for t in result.build], tls_verify=config.tls_verify)
    lists = registry.published([m.image for m in result.manifest], tls_verify=config.tls_verify, raw=True)
    upstream = registry.arch_digests(plan_mod.embedded_refs(images), own=config.registry, tls_verify=config.tls_verify)
    kept, notes = plan_mod.skip_unchanged(result, images, lists, adopt=adopt, upstream=upstream)
    return kept, [*notes, f"skipped {len(result.build) - len(kept.build)} unchanged of {len(result.build)} build(s)"]
