"""The `lock` command: ask GitHub for each pin of clusterimage.lock, then write it only once everything resolved."""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

from . import config as config_mod
from . import defaults, yamlio
from .errors import ConfigError, GitHubError, UserError
from .lockfile import ARCHES, LOCK_FILE, SHA256, TOOLS, Lock, dump, load
from .model import CONFIG_FILE, TOOL_VERSION, Config, action_repo
from .write import put

SEALOS_REPO = "labring/sealos"
BUILDAH_REPO = "labring/cluster-image"


def run(repo: Path, update: tuple[str, ...], api_url: str | None, action: str | None = None) -> list[str]:
    """The `lock` command: resolve, then write clusterimage.lock only once everything resolved. Returns report lines."""
    from . import github  # ghapi is slow to import; only `lock` and `dispatch` need it

    config, sealos_pinned = _config(repo, action)
    try:
        old = load(repo)
    except ConfigError:
        if update:
            raise
        old = None  # a full refresh replaces a broken lock
    with github.connect(api_url) as gh:
        new = resolve(gh, config, sealos_pinned=sealos_pinned, old=old, update=update)
    lines = changes(old, new)
    lines.append(f"wrote {LOCK_FILE}" if put(Path(repo), {LOCK_FILE: dump(new)}) else f"{LOCK_FILE} up to date")
    return lines


def resolve(gh, config: Config, *, sealos_pinned: bool, old: Lock | None, update: tuple[str, ...] = ()) -> Lock:
    """Ask GitHub for every entry, except those `update` leaves out that `old` still answers for this config."""
    wanted = {name: pin.tag for name, pin in defaults.PINS.items()}
    remote = None if config.action is None or config.action_ref.local else config.action_ref
    known = sorted({*wanted, *TOOLS, *([remote.repo] if remote else [])})
    for name in update:
        if name not in known:
            raise UserError(f"--update: {name!r}: expected one of {', '.join(known)}")

    def kept(name: str) -> bool:
        return old is not None and bool(update) and name not in update

    actions = {}
    for name, tag in wanted.items():
        prev = old.actions.get(name) if old else None
        if kept(name) and prev and prev[0] == tag:
            actions[name] = prev
        else:
            actions[name] = (tag, gh.tag_commit(action_repo(name), tag))
    if remote:
        name, sha = remote.repo, remote.sha
        prev = old.actions.get(name) if old else None
        actions[name] = prev if kept(name) and prev and prev[1] == sha else (gh.commit_tag(name, sha), sha)

    if kept("sealos") and (not sealos_pinned or old.sealos_version == config.sealos_version):
        sealos = old.sealos_version, old.sealos_sha256
    else:
        sealos = _sealos(gh, config.sealos_version if sealos_pinned else None)
    if kept("buildah") and old.buildah_version == config.buildah_version:
        buildah = old.buildah_version, old.buildah_sha256
    else:
        buildah = _buildah(gh, config.buildah_version)
    return Lock(
        actions=dict(sorted(actions.items())),
        sealos_version=sealos[0],
        sealos_sha256=sealos[1],
        buildah_version=buildah[0],
        buildah_sha256=buildah[1],
    )


def changes(old: Lock | None, new: Lock) -> list[str]:
    def action(pin):
        return f"{pin[0] or '(no tag)'} {pin[1][:12]}" if pin else "(none)"

    def tool(version, sums):
        return f"{version} ({', '.join(f'{a} {s[:12]}' for a, s in sums.items())})" if version else "(none)"

    lines = []
    for name in sorted({*new.actions, *(old.actions if old else {})}):
        before, after = (old.actions.get(name) if old else None), new.actions.get(name)
        if before != after:
            lines.append(f"{name}: {action(before)} -> {action(after)}")
    for name in TOOLS:
        before = (getattr(old, f"{name}_version"), getattr(old, f"{name}_sha256")) if old else ("", {})
        after = getattr(new, f"{name}_version"), getattr(new, f"{name}_sha256")
        if before != after:
            lines.append(f"{name}: {tool(*before)} -> {tool(*after)}")
    return lines


def _config(repo: Path, action: str | None = None) -> tuple[Config, bool]:
    """The config, and whether it pins sealos_version (absent or `latest` means the latest release)."""
    path = Path(repo) / CONFIG_FILE
    try:
        raw = yamlio.load(path.read_text(encoding="utf-8")) if path.exists() else {}
    except (yaml.YAMLError, UnicodeDecodeError):
        raw = {}  # config.load reports it, naming the line
    raw = raw if isinstance(raw, dict) else {}
    # The lock needs no image namespace, so a repo that passes --repository to `workflows` can still be locked.
    overrides = {"action": action, **({} if "repository" in raw else {"repository": "unused"})}
    config = config_mod.load(repo, overrides)
    return config, "sealos_version" in raw and config.sealos_version != "latest"


def _sealos(gh, version: str | None) -> tuple[str, dict[str, str]]:
    release = gh.release(SEALOS_REPO, f"v{version}" if version else None)
    found = release.tag.removeprefix("v")
    if not TOOL_VERSION.fullmatch(found):
        raise GitHubError(f"{SEALOS_REPO} release {release.tag}: not a version tag such as v5.1.1")
    sums_name = defaults.asset(defaults.DATA["sealos"]["checksums_url"], found, "")
    sums = _checksums(gh.download(release, sums_name).decode("utf-8", "replace"))
    shas = {}
    for arch in ARCHES:
        name = defaults.asset(defaults.DATA["sealos"]["url"], found, arch)
        if name not in sums:
            raise GitHubError(f"{SEALOS_REPO} release {release.tag}: {sums_name} lists no {name}")
        shas[arch] = sums[name]
    return found, shas


def _buildah(gh, version: str) -> tuple[str, dict[str, str]]:
    release = gh.release(BUILDAH_REPO, version)
    url = defaults.DATA["buildah"]["url"]
    return version, {a: hashlib.sha256(gh.download(release, defaults.asset(url, version, a))).hexdigest()
                     for a in ARCHES}


def _checksums(text: str) -> dict[str, str]:
    """`<sha256>  <file>` lines (sha256sum's format; `*file` in binary mode) → {file: sha256}; the first line for a file
    counts, as install.sh's listed_sum reads it."""
    sums = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and SHA256.fullmatch(parts[0].lower()):
            sums.setdefault(parts[1].removeprefix("*"), parts[0].lower())
    return sums
