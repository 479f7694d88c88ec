"""Pure planning: a repository tree and a Config → what to build, per arch, and which lists to publish."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path, PurePosixPath

from . import kubefile
from .errors import UserError
from .model import BUILD_FILES, COMPONENT, CONFIG_FILE, TAG, AppVersion, Arch, Config, Manifest, Parent, Plan, Target

TEMPLATE_DIR = "latest"
TEMPLATE_SCRIPT = "init.sh"


def discover(repo: Path, config: Config) -> tuple[AppVersion, ...]:
    """Every app-version in the tree, plus the versions config names for `latest/` templates."""
    found: list[AppVersion] = []
    root = repo / config.apps_dir
    for app_entry in _dirs(root):
        app = app_entry.name
        where = f"{config.apps_dir}/{app}"
        if not COMPONENT.fullmatch(app):
            raise UserError(f"{where}: app name {app!r}: expected a lowercase OCI repository component ([a-z0-9] with . _ -)")
        opts = config.apps.get(app)
        arches = opts.arches if opts and opts.arches else config.arches
        concrete: set[str] = set()
        for ver_entry in _dirs(Path(app_entry.path)):
            names = set(os.listdir(ver_entry.path))
            context = f"{where}/{ver_entry.name}"
            if ver_entry.name == TEMPLATE_DIR or TEMPLATE_SCRIPT in names:
                for version in opts.versions if opts else ():
                    found.append(_app_version(app, version, context, names, arches, prepare=True, repo=repo))
                continue
            if not names.intersection(BUILD_FILES):
                continue
            if not TAG.fullmatch(ver_entry.name):
                raise UserError(f"{context}: version {ver_entry.name!r}: expected an OCI tag ([A-Za-z0-9_][A-Za-z0-9_.-]*)")
            concrete.add(ver_entry.name)
            version_arches = arches
            if "build_arch" in names:
                version_arches = (_build_arch(Path(ver_entry.path) / "build_arch", f"{context}/build_arch"),)
            found.append(_app_version(app, ver_entry.name, context, names, version_arches, prepare=False, repo=repo))
        clash = concrete.intersection(opts.versions if opts else ())
        if clash:
            raise UserError(
                f"{CONFIG_FILE}: apps.{app}.versions: {sorted(clash)[0]!r}: expected a version without its own directory"
            )
    return resolve_parents(tuple(sorted(found, key=lambda av: av.key)), config)


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
                f"{by_key[key].file}: FROM cycle: " + " -> ".join(f"{a}:{v}" for a, v in cycle)
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
                    out.append(f"{av.file}: CMD does not run {command!r} from the CMD of its parent {up.file}")
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


def template_version(repo: Path, config: Config, app: str, version: str) -> AppVersion | None:
    """A dispatch may name a version of a `latest/` template that config does not list."""
    app_dir = repo / config.apps_dir / app
    if not app_dir.is_dir():
        return None
    for entry in _dirs(app_dir):
        names = set(os.listdir(entry.path))
        if entry.name == TEMPLATE_DIR or TEMPLATE_SCRIPT in names:
            opts = config.apps.get(app)
            arches = opts.arches if opts and opts.arches else config.arches
            context = f"{config.apps_dir}/{app}/{entry.name}"
            return _app_version(app, version, context, names, arches, prepare=True, repo=repo)
    return None


def with_version(repo: Path, config: Config, found: tuple[AppVersion, ...], app: str, version: str):
    """A dispatch may name any version of a `latest/` template; other app-versions must exist."""
    if any(av.key == (app, version) for av in found):
        return found
    extra = template_version(repo, config, app, version) if TAG.fullmatch(version) else None
    if extra is None:
        raise UserError(f"{config.apps_dir}/{app}/{version}: no such app-version (and no latest/ template to make it)")
    return resolve_parents(found + (extra,), config)


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
    """Filter by --app/--version, by the paths a diff touched (None: no diff filter), and by schedule."""
    out = [av for av in found if (app is None or av.app == app) and (version is None or av.version == version)]
    if scheduled is not None:
        out = [av for av in out if scheduled(av.app)]
    if changed is None or CONFIG_FILE in changed:
        return tuple(out)
    changed_paths = [PurePosixPath(p) for p in changed]
    return tuple(av for av in out if any(_under(p, av.context) for p in changed_paths))


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
                    file=av.file, name=name, prepare=av.prepare, build_args=build_args, stage=stage[av.key],
                    parents=parents,
                )
            )
        manifests.append(Manifest(app=av.app, version=av.version, name=name, arches=av.arches, stage=stage[av.key]))
    return Plan(build=tuple(targets), manifest=tuple(manifests))


def _dirs(path: Path):
    with os.scandir(path) as it:
        entries = [e for e in it if e.is_dir() and not e.name.startswith(".")]
    return sorted(entries, key=lambda e: e.name)


def _app_version(app, version, context, names, arches, *, prepare, repo: Path) -> AppVersion:
    file = next((f for f in BUILD_FILES if f in names), BUILD_FILES[0])
    parsed = None
    if file in names:
        with open(os.path.join(repo, context, file), encoding="utf-8") as fh:
            parsed = kubefile.parse(fh.read())
    return AppVersion(
        app=app, version=version, context=context, file=f"{context}/{file}", arches=tuple(arches), prepare=prepare,
        froms=parsed.froms if parsed else (), cmd=parsed.cmd if parsed else (),
    )


def _build_arch(path: Path, shown: str) -> Arch:
    text = path.read_text(encoding="utf-8").strip()
    try:
        return Arch(text)
    except ValueError:
        raise UserError(f"{shown}: {text!r}: expected one of " + ", ".join(a.value for a in Arch)) from None


def _under(path: PurePosixPath, directory: str) -> bool:
    return path == PurePosixPath(directory) or PurePosixPath(directory) in path.parents


def skip_unchanged(plan: Plan, current: dict[Target, str], published: dict[Target, str | None]) -> Plan:
    """Drop targets whose published image already carries the same input digest, and lists with nothing rebuilt."""
    build = tuple(t for t in plan.build if published.get(t) != current[t])
    rebuilt = {(t.app, t.version) for t in build}
    manifest = tuple(m for m in plan.manifest if (m.app, m.version) in rebuilt)
    return Plan(build=build, manifest=manifest)
