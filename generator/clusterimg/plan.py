"""Pure planning: a repository tree and a Config → what to build, per arch, and which lists to publish."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from . import kubefile
from .errors import ConfigError, UserError
from .inputs import LABEL
from .model import (
    BUILD_FILES,
    COMPONENT,
    CONFIG_FILE,
    TAG,
    AppOptions,
    AppVersion,
    Arch,
    Config,
    Manifest,
    Parent,
    Plan,
    Skipped,
    Target,
    Tree,
)

TEMPLATE_DIR = "latest"
INIT_SCRIPT = "init.sh"
BUILD_ARCH = "build_arch"
MAX_TEXT = 1 << 20  # a build file or build_arch larger than this is not one


def discover(repo: Path, config: Config) -> Tree:
    """Every dir under apps_dir, as labring's CI reads it: a version dir with a build file or init.sh builds as
    itself; `latest/` (or the dir config names) only serves the versions config lists; a dir whose name cannot be an
    image name or tag is skipped with its reason, so one bad dir never blocks the rest."""
    found: list[AppVersion] = []
    skipped: list[Skipped] = []
    templates: dict[str, str] = {}
    apps: set[str] = set()
    root = repo / config.apps_dir
    for app_entry in _dirs(root):
        app = app_entry.name
        where = f"{config.apps_dir}/{app}"
        if not COMPONENT.fullmatch(app):
            skipped.append(Skipped(where, f"app name {app!r} is not an image name ([a-z0-9] with . _ -)"))
            continue
        apps.add(app)
        opts = config.apps.get(app) or AppOptions()
        template = opts.template or TEMPLATE_DIR
        own: set[str] = set()
        for ver_entry in _dirs(Path(app_entry.path)):
            name, context = ver_entry.name, f"{where}/{ver_entry.name}"
            names = set(os.listdir(ver_entry.path))
            if name == template:
                templates[app] = context
                if name == TEMPLATE_DIR:
                    continue
            if not names.intersection((*BUILD_FILES, INIT_SCRIPT)):
                skipped.append(Skipped(context, f"no {', '.join(BUILD_FILES)} or {INIT_SCRIPT}", warn=False))
                continue
            if not TAG.fullmatch(name):
                skipped.append(Skipped(context, f"version {name!r} is not an image tag ([A-Za-z0-9_][A-Za-z0-9_.-]*)"))
                continue
            own.add(name)
            found.append(_app_version(repo, config, app, name, context, names))
        key = f"apps.{app}"
        if opts.template and app not in templates:
            raise ConfigError(CONFIG_FILE, f"{key}.template", opts.template, f"a directory in {where}")
        for version in opts.versions:
            if version in own:
                raise ConfigError(CONFIG_FILE, f"{key}.versions", version,
                                  f"a version without its own directory ({where}/{version} builds it already)")
            if app not in templates:
                raise ConfigError(CONFIG_FILE, f"{key}.versions", version,
                                  f"versions only for an app with a template ({where}/{TEMPLATE_DIR} or {key}.template)")
            found.append(_from_template(repo, config, app, version, templates[app]))
    for app in config.apps:
        if app not in apps:
            raise ConfigError(CONFIG_FILE, f"apps.{app}", app, f"an app with a directory in {config.apps_dir}")
    return Tree(
        found=resolve_parents(tuple(sorted(found, key=lambda av: av.key)), config),
        templates=templates,
        skipped=tuple(skipped),
    )


def resolve_parents(found: tuple[AppVersion, ...], config: Config) -> tuple[AppVersion, ...]:
    """Link each FROM that names an image of this tree to that app-version; a cycle is a user error."""
    index = {av.key for av in found}
    linked = tuple(
        replace(av, parents=parents) if (parents := _parents(av, config, index)) else av for av in found
    )
    stages(linked)  # raises on a cycle
    return linked


def stages(selected: tuple[AppVersion, ...]) -> dict[tuple[str, str], int]:
    """0 without a parent in `selected`, else one more than its highest parent there."""
    by_key = {av.key: av for av in selected}
    done: dict[tuple[str, str], int] = {}

    def visit(key, path):
        if key in done:
            return done[key]
        if key in path:
            cycle = path[path.index(key):] + [key]
            raise UserError(
                f"{by_key[key].context}: FROM cycle: " + " -> ".join(f"{a}:{v}" for a, v in cycle)
                + "; expected each image to build only FROM images built before it"
            )
        parents = [p.key for p in by_key[key].parents if p.key in by_key and p.key != key]
        done[key] = max((visit(p, path + [key]) + 1 for p in parents), default=0)
        return done[key]

    for av in selected:
        visit(av.key, [])
    return done


def cmd_warnings(found: tuple[AppVersion, ...]) -> list[str]:
    """CMD replaces the parent's CMD: a child that sets its own must repeat each of the parent's commands."""
    by_key = {av.key: av for av in found}
    out = []
    for av in found:
        if not av.cmd:
            continue
        for parent in av.parents:
            up = by_key[parent.key]
            for command in up.cmd:
                if command not in av.cmd:
                    out.append(f"{av.context}: CMD does not run {command!r} from the CMD of its parent {up.context}")
    return out


def _parents(av: AppVersion, config: Config, index) -> tuple[Parent, ...]:
    return tuple(Parent(ref, key) for ref in av.froms if (key := _in_tree(ref, config, index)))


def _in_tree(ref: str, config: Config, index: set[tuple[str, str]]) -> tuple[str, str] | None:
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag or "@" in ref:
        return None
    prefixes = [f"{config.registry}/{config.repository}/"]
    if config.registry == "docker.io":
        prefixes += [f"{config.repository}/", f"index.docker.io/{config.repository}/"]
    app = next((name[len(p):] for p in prefixes if name.startswith(p)), None)
    if app is None or "/" in app:
        return None
    if (app, tag) in index:
        return (app, tag)
    for arch in Arch:
        if tag.endswith(f"-{arch.value}") and (app, tag[: -len(arch.value) - 1]) in index:
            return (app, tag[: -len(arch.value) - 1])
    return None


def accounting(tree: Tree, config: Config) -> list[str]:
    """What became of every dir that builds nothing by itself: templates and skipped dirs."""
    lines = []
    for app, context in sorted(tree.templates.items()):
        versions = config.apps[app].versions if app in config.apps else ()
        lines.append(f"template {context}  " + (f"serves {', '.join(versions)}" if versions else "dispatch only"))
    lines += [f"skipped  {s.path}  {s.reason}" for s in tree.skipped]
    return lines


def with_version(repo: Path, config: Config, tree: Tree, app: str, version: str | None) -> tuple[AppVersion, ...]:
    """A dispatch may name any version of an app with a template; a version with its own dir builds from it."""
    if app not in tree.templates and not any(av.app == app for av in tree.found):
        raise UserError(f"{config.apps_dir}/{app}: no such app")
    if version is None or any(av.key == (app, version) for av in tree.found):
        return tree.found
    if app not in tree.templates:
        raise UserError(f"{config.apps_dir}/{app}/{version}: no such version, and no {TEMPLATE_DIR}/ template to make it")
    if not TAG.fullmatch(version):
        raise UserError(f"version {version!r}: expected an image tag ([A-Za-z0-9_][A-Za-z0-9_.-]*)")
    return resolve_parents(tree.found + (_from_template(repo, config, app, version, tree.templates[app]),), config)


def scheduled_by(config: Config, cron: str) -> Callable[[str], bool]:
    """The apps a cron rebuilds; `*` stands for any schedule (act and manual replays carry no cron)."""

    def rebuilds(app: str) -> bool:
        own = config.schedule_of(app)
        return own is not None and cron in ("*", own)

    return rebuilds


def select(
    found: tuple[AppVersion, ...],
    *,
    app: str | None = None,
    version: str | None = None,
    changed: list[str] | None = None,
    scheduled: Callable[[str], bool] | None = None,
) -> tuple[AppVersion, ...]:
    """Filter by --app/--version, by schedule, and by the paths a diff touched (None: no diff filter); an app-version
    whose in-tree parent a diff touched is selected with it, since its inputs changed too."""
    out = [av for av in found if (app is None or av.app == app) and (version is None or av.version == version)]
    if scheduled is not None:
        out = [av for av in out if scheduled(av.app)]
    if changed is None or CONFIG_FILE in changed:
        return tuple(out)
    changed_paths = [PurePosixPath(p) for p in changed]
    touched = {av.key for av in found if any(_under(p, av.context) for p in changed_paths)}
    grew = True
    while grew:  # down the FROM links, to every descendant
        more = {av.key for av in found if av.key not in touched and any(p.key in touched for p in av.parents)}
        touched |= more
        grew = bool(more)
    return tuple(av for av in out if av.key in touched)


def build_plan(config: Config, selected: tuple[AppVersion, ...]) -> Plan:
    targets: list[Target] = []
    manifests: list[Manifest] = []
    stage = stages(selected)
    for av in selected:
        name = config.image_name(av.app)
        parents = tuple((p.written, f"{config.image_name(p.key[0])}:{p.key[1]}") for p in av.parents)
        opts = config.apps.get(av.app)
        build_args = "\n".join(f"{k}={v}" for k, v in opts.build_args) if opts else ""
        for arch in av.arches:
            targets.append(
                Target(
                    app=av.app, version=av.version, arch=arch, runner=config.runners[arch], context=av.context,
                    name=name, build_args=build_args, stage=stage[av.key], parents=parents,
                )
            )
        manifests.append(Manifest(app=av.app, version=av.version, name=name, arches=av.arches, stage=stage[av.key]))
    return Plan(build=tuple(targets), manifest=tuple(manifests))


def _dirs(path: Path):
    with os.scandir(path) as it:
        entries = [e for e in it if e.is_dir() and not e.name.startswith(".")]
    return sorted(entries, key=lambda e: e.name)


def _from_template(repo: Path, config: Config, app: str, version: str, context: str) -> AppVersion:
    return _app_version(repo, config, app, version, context, set(os.listdir(repo / context)))


def _app_version(repo: Path, config: Config, app: str, version: str, context: str, names: set[str]) -> AppVersion:
    """FROM and CMD come from every build file present: init.sh and the leg pick the one that is built."""
    froms: list[str] = []
    cmd: list[str] = []
    for name in BUILD_FILES:
        if name in names:
            parsed = kubefile.parse(_read_text(repo, f"{context}/{name}"))
            froms += [f for f in parsed.froms if f not in froms]
            cmd += [c for c in parsed.cmd if c not in cmd]
    opts = config.apps.get(app) or AppOptions()
    arches = opts.arches or config.arches
    if BUILD_ARCH in names and (pinned := _read_text(repo, f"{context}/{BUILD_ARCH}").strip()):
        try:
            arches = (Arch(pinned),)
        except ValueError:
            raise UserError(
                f"{context}/{BUILD_ARCH}: {pinned!r}: expected one of " + ", ".join(a.value for a in Arch)
            ) from None
    return AppVersion(app=app, version=version, context=context, arches=tuple(arches), froms=tuple(froms),
                      cmd=tuple(cmd))


def _read_text(repo: Path, rel: str) -> str:
    """A small regular text file; anything else (a FIFO, a directory, a dangling link) is a one-line user error."""
    path = repo / rel
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise UserError(f"{rel}: expected a regular file")
        if st.st_size > MAX_TEXT:
            raise UserError(f"{rel}: {st.st_size} bytes: expected a text file of at most {MAX_TEXT} bytes")
        with open(path, "rb") as fh:
            return fh.read(MAX_TEXT).decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{rel}: expected UTF-8 text") from None
    except OSError as exc:
        raise UserError(f"{rel}: {exc.strerror}: expected a readable regular file") from None


def _under(path: PurePosixPath, directory: str) -> bool:
    return path == PurePosixPath(directory) or PurePosixPath(directory) in path.parents


EMBEDDED = "io.clusterimage.embedded"


def embedded_refs(images: dict) -> list[str]:
    """Every embedded image the published images recorded, for one lookup each."""
    refs = {word.rpartition("@")[0] for got in images.values() if got for word in got.labels.get(EMBEDDED, "").split()}
    return sorted(r for r in refs if r)


def moved_upstream(target: Target, published, current: dict) -> str | None:
    """What moved, when an image `target` embeds now resolves to another digest for its arch; None when nothing
    did, or when it could not be looked up (an unreachable upstream never triggers a rebuild)."""
    for word in published.labels.get(EMBEDDED, "").split():
        ref, _, was = word.rpartition("@")
        now = current.get(ref)
        got = now and (now.get(target.arch.value) or now.get("*"))
        if got and got != was:
            return f"{ref} moved from {was} to {got}"
    return None


def skip_unchanged(plan: Plan, images: dict, lists: dict, *, adopt: bool, upstream: dict | None = None
                   ) -> tuple[Plan, list[str]]:
    """Drop what is published and current: an image that carries this run's input digest, and a list whose entries
    are exactly those images. A list with current images but missing or stale is kept, so the fan-in finishes it.
    With `adopt`, an image that exists without our label counts as published (a registry this tool takes over).
    `images` maps each target's image, and `lists` each list, to registry.Published or None; `upstream` maps each
    embedded ref to its current digests (registry.arch_digests): an image whose embedded image moved is rebuilt."""
    upstream = upstream or {}
    build: list[Target] = []
    manifest: list[Manifest] = []
    notes: list[str] = []
    targets: dict[tuple[str, str], list[Target]] = {}
    for t in plan.build:
        targets.setdefault((t.app, t.version), []).append(t)
    for m in plan.manifest:
        own = targets.get((m.app, m.version), [])
        held = {t: images.get(t.image) for t in own}
        stale = [t for t, got in held.items() if got is None or got.labels.get(LABEL) != t.inputs]
        for t in own:
            if t not in stale and (why := moved_upstream(t, held[t], upstream)):
                stale.append(t)
                notes.append(f"rebuilding {t.image}: {why}")
        adopted = [t for t in stale if adopt and held[t] is not None and LABEL not in held[t].labels]
        if adopted and len(adopted) == len(stale):
            notes.append(f"adopted {m.image}: published without an input label; rebuilt on a change, force or dispatch")
            continue
        if stale:
            build += stale
            manifest.append(m)
            continue
        listed = lists.get(m.image)
        if listed is None or listed.listed != {held[t].digest for t in own}:
            notes.append(f"finishing {m.image}: its images are current, its list is {'stale' if listed else 'missing'}")
            manifest.append(m)
    return Plan(build=tuple(t for t in plan.build if t in set(build)), manifest=tuple(manifest)), notes


@dataclass(frozen=True)
class Selection:
    """What a plan job plans for its event: the event policy, in one place."""

    changed_from: str | None = None
    skip_unchanged: bool = False
    adopt: bool = False
    cron: str | None = None
    note: str = ""  # a line for the log, when the policy chose something worth saying


def for_event(event: str, *, before: str | None = None, base: str | None = None, last_success: str | None = None,
              app: str | None = None, version: str | None = None, cron: str | None = None, force: bool = False,
              is_ancestor: Callable[[str], bool] = lambda sha: False) -> Selection:
    """The plan for a GitHub event. A push diffs from the last successful run when that is an ancestor (a run cancelled
    while pending never built its changes), else from its own `before`, and a new branch builds everything; a pull
    request diffs from its base; a dispatch or comment builds what it names, and a schedule what its cron rebuilds,
    both skipping images whose inputs did not change unless forced, and a schedule adopting tags published before this
    tool. Any other event plans everything."""
    if event == "push":
        if not before or not before.strip("0"):
            return Selection()
        if last_success and last_success != before and is_ancestor(last_success):
            return Selection(changed_from=last_success,
                             note=f"diffing from {last_success}, the last successful run, not {before}")
        return Selection(changed_from=before)
    if event == "pull_request":
        return Selection(changed_from=base or None)
    if event in ("workflow_dispatch", "issue_comment"):
        if event == "issue_comment" and not (app and version):
            raise UserError("a comment build needs app and version")
        return Selection(skip_unchanged=not force)
    if event == "schedule":  # act and manual replays carry no cron: then every scheduled app builds
        return Selection(cron=cron or "*", skip_unchanged=not force, adopt=not force)
    return Selection()
