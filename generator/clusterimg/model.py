"""The resolved model: every default filled in, every value validated."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum

from . import defaults

# OCI distribution spec: one path component of a repository name, and a tag.
COMPONENT = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*")
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
REGISTRY = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::[0-9]{1,5})?")
LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
SECRET = re.compile(r"(?!(?i:GITHUB_))[A-Za-z_][A-Za-z0-9_]*")  # GitHub compares secret names in any case
BUILD_ARG = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
BRANCH = re.compile(r"[A-Za-z0-9._/-]+")
TOOL_VERSION = re.compile(r"[0-9]+(?:\.[0-9]+){1,3}|[a-z][a-z0-9.-]*")
# OWNER/NAME on GitHub: no dots in an owner; a name may hold dots but is never `.` or `..`.
GITHUB_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}/(?!\.\.?\Z)[A-Za-z0-9_.-]{1,100}")
REMOTE_ACTION = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_./-]+)?@[0-9a-f]{40}")

BUILD_FILES = ("Kubefile", "Dockerfile", "Sealfile")
CONFIG_FILE = "clusterimage.yaml"
VENDOR_DIR = ".github/actions/clusterimage"
WORKFLOW_FILE = "clusterimage.yml"
LOCK_WORKFLOW_FILE = "clusterimage-lock.yml"
VENDORED = "vendored"  # `action: vendored`: the copy in VENDOR_DIR, even when this package names its release
RELEASE_TAG = re.compile(r"v[0-9]+\.[0-9]+\.[0-9]+")
COMMIT_SHA = re.compile(r"[0-9a-f]{40}")
def split_tag(image_tag: str) -> tuple[str, str]:
    """NAME:TAG → (NAME, TAG); a ValueError says what was expected."""
    image, sep, version = image_tag.rpartition(":")
    if not sep or "/" in version or not image:
        raise ValueError(f"{image_tag!r}: expected <image>:<version>")
    return image, version


class Arch(str, Enum):
    AMD64 = "amd64"
    ARM64 = "arm64"

    def __str__(self) -> str:
        return self.value

    @property
    def default_runner(self) -> tuple[str, ...]:
        return defaults.RUNNERS[self.value]


class Builder(str, Enum):
    SEALOS = "sealos"
    BUILDAH = "buildah"


class Tools(str, Enum):
    DOWNLOAD = "download"
    SYSTEM = "system"


class PullRequests(str, Enum):
    """Which pull requests the workflow builds, and where. A fork's code on a self-hosted runner can stay there."""

    SAME_REPO = "same-repo"  # only heads in this repository, whose authors may push anyway
    HOSTED = "hosted"  # every pull request, on GitHub-hosted runners, which start clean each job
    ALL = "all"  # every pull request, on the configured runners
    OFF = "off"  # none

    @classmethod
    def default_for(cls, self_hosted: bool) -> PullRequests:
        return cls.SAME_REPO if self_hosted else cls.ALL


def default_runners() -> dict[Arch, tuple[str, ...]]:
    return {a: a.default_runner for a in Arch}


def is_self_hosted(labels: tuple[str, ...]) -> bool:
    return "self-hosted" in (label.lower() for label in labels)


def action_repo(path: str) -> str:
    """owner/repo of an action path such as owner/repo/sub: what the lock pins and GitHub's API names."""
    return "/".join(path.split("/")[:2])


@dataclass(frozen=True)
class ActionRef:
    """An action reference, parsed once: a ./path in this repository, or owner/repo[/path]@<commit sha>."""

    path: str  # ./dir, or owner/repo[/path]
    sha: str = ""  # empty for a ./path

    @classmethod
    def parse(cls, text: str) -> ActionRef:
        if text.startswith("./"):
            return cls(text)
        if not REMOTE_ACTION.fullmatch(text):
            raise ValueError(f"{text!r}: expected a ./path or owner/repo@<40-hex commit SHA>")
        path, _, sha = text.partition("@")
        return cls(path, sha)

    @property
    def local(self) -> bool:
        return not self.sha

    @property
    def repo(self) -> str:
        return action_repo(self.path)

    def uses(self, sub: str = "") -> str:
        """What `uses:` names for this action, or for its sub-action `sub`."""
        if self.local:
            return self.path.rstrip("/") + ("/" + sub if sub else "") if self.path != "./" else "./" + sub
        return f"{self.path}/{sub}@{self.sha}" if sub else f"{self.path}@{self.sha}"


@dataclass(frozen=True, kw_only=True)
class AppOptions:
    arches: tuple[Arch, ...] | None = None
    versions: tuple[str, ...] = ()
    template: str | None = None  # the dir that serves versions without a dir of their own; None: latest/
    build_args: tuple[tuple[str, str], ...] = ()
    schedule: str | bool | None = None  # None: the repo's schedule; False: never on a schedule; or its own cron


@dataclass(frozen=True, kw_only=True)
class Mirror:
    """Another registry that receives each published list, with the same digests."""

    registry: str
    repository: str
    username_secret: str
    password_secret: str
    tls_verify: bool = True

    @property
    def prefix(self) -> str:
        return f"{self.registry}/{self.repository}"


@dataclass(frozen=True, kw_only=True)
class Config:
    file: str = CONFIG_FILE
    registry: str = defaults.REGISTRY
    repository: str
    apps_dir: str = "applications"
    arches: tuple[Arch, ...] = (Arch.AMD64, Arch.ARM64)
    runners: dict[Arch, tuple[str, ...]] = field(default_factory=lambda: default_runners())
    schedule: str | None = None
    action: str | None = None  # a ./path or owner/repo@sha; None: the vendored copy in VENDOR_DIR
    action_tag: str = ""  # the release tag of a remote action when known without the lock (this package's own)
    branches: tuple[str, ...] = ("main",)
    builder: Builder = Builder(defaults.BUILDER)
    tools: Tools = Tools(defaults.TOOLS)
    pull_requests: PullRequests | None = None  # None: same-repo when a runner is self-hosted, else all
    tls_verify: bool = defaults.TLS_VERIFY
    check_images: bool = True  # the build leg's pre-flight: every embedded image exists for the target arch
    setup: str | None = None  # repo-relative script each build leg runs once before init.sh, without credentials
    save_images: bool = True  # the build leg saves the embedded images into <context>/registry before building
    evidence: bool = defaults.EVIDENCE
    sigstore: str = defaults.SIGSTORE  # public-good, or a repo-relative client trust config
    legacy_signatures: bool = defaults.LEGACY_SIGNATURES
    github_repo: str | None = None  # OWNER/NAME for `dispatch`; default: the git remote origin
    lock_refresh: str | None = None  # cron of the optional workflow that refreshes clusterimage.lock through a PR
    keepalive: bool = True  # scheduled runs re-enable the workflow before GitHub's 60-day inactivity cut-off
    comment_builds: bool = False  # `/build <app> <version>` comments by people with write access build it
    mirrors: tuple[Mirror, ...] = ()
    username_secret: str = "REGISTRY_USERNAME"
    password_secret: str = "REGISTRY_PASSWORD"
    sealos_version: str = defaults.SEALOS_VERSION
    buildah_version: str = defaults.BUILDAH_VERSION
    apps: dict[str, AppOptions] = field(default_factory=dict)

    def __post_init__(self):
        if self.pull_requests is None:
            object.__setattr__(self, "pull_requests", PullRequests.default_for(bool(self.self_hosted_arches)))

    @property
    def self_hosted_arches(self) -> tuple[Arch, ...]:
        return tuple(a for a in self.arches if is_self_hosted(self.runners[a]))

    def warnings(self) -> list[str]:
        arches = ", ".join(map(str, self.self_hosted_arches))
        if self.pull_requests is PullRequests.ALL and arches:
            return [f"{self.file}: pull_requests: all with self-hosted runners ({arches}): a fork's pull request runs "
                    "its code there, and what it leaves behind can reach later runs and their credentials; set "
                    "pull_requests to same-repo, hosted or off"]
        return []

    @property
    def action_ref(self) -> ActionRef:
        """The build action `uses:` names; sub-actions hang off it."""
        return ActionRef.parse(self.action or "./" + VENDOR_DIR)

    def uses(self, sub: str = "") -> str:
        return self.action_ref.uses(sub)

    def schedule_of(self, app: str) -> str | None:
        """The cron that rebuilds this app, or None when no schedule does."""
        own = self.apps[app].schedule if app in self.apps else None
        if own is False:
            return None
        return own if isinstance(own, str) else self.schedule

    def schedules(self, apps) -> list[str]:
        return sorted({cron for app in apps if (cron := self.schedule_of(app))})

    def image_name(self, app: str) -> str:
        return f"{self.registry}/{self.repository}/{app}"


@dataclass(frozen=True, kw_only=True)
class Release:
    """Where this package was released from: the release workflow writes it into the wheel."""

    repository: str  # OWNER/NAME of the action's repository
    sha: str  # the release commit
    tag: str  # vX.Y.Z

    @property
    def action(self) -> str:
        return f"{self.repository}@{self.sha}"


@dataclass(frozen=True)
class Parent:
    written: str  # the ref as the Kubefile writes it
    key: tuple[str, str]  # (app, version) in this tree


@dataclass(frozen=True, kw_only=True)
class AppVersion:
    app: str
    version: str
    context: str  # repo-relative, posix: its own dir, or the template it is built from
    arches: tuple[Arch, ...]
    froms: tuple[str, ...] = ()  # the image refs its build files build FROM
    cmd: tuple[str, ...] = ()  # the commands of its build files' CMD
    parents: tuple[Parent, ...] = ()  # the FROMs that name an app-version of this tree

    @property
    def key(self) -> tuple[str, str]:
        return (self.app, self.version)


@dataclass(frozen=True)
class Skipped:
    path: str  # repo-relative dir
    reason: str
    warn: bool = True  # False for a dir that simply holds nothing to build (docs, image lists)


@dataclass(frozen=True, kw_only=True)
class Tree:
    """Every dir under apps_dir, accounted for: built, a template, or skipped with its reason."""

    found: tuple[AppVersion, ...]
    templates: dict[str, str]  # app → the context that serves versions without a dir of their own
    skipped: tuple[Skipped, ...] = ()

    def warnings(self) -> list[str]:
        return [f"{s.path}: skipped: {s.reason}" for s in self.skipped if s.warn]


@dataclass(frozen=True, kw_only=True)
class Target:
    app: str
    version: str
    arch: Arch
    runner: tuple[str, ...]
    context: str
    name: str  # image name without tag
    build_args: str  # newline-separated KEY=VALUE
    stage: int = 0  # built after every lower stage's manifest lists are published
    parents: tuple[tuple[str, str], ...] = ()  # (FROM ref as written, in-tree image name:version)
    inputs: str = ""  # the input digest its image is labelled with; empty until the plan computes it
    parent_inputs: tuple[str, ...] = ()  # per parent: the input digest its image for this arch carries, if it has one
    time: int | None = None  # seconds since the epoch of the last commit to its context; None: the leg's default

    @property
    def image(self) -> str:
        return f"{self.name}:{self.version}-{self.arch}"


@dataclass(frozen=True, kw_only=True)
class Manifest:
    app: str
    version: str
    name: str
    arches: tuple[Arch, ...]
    stage: int = 0
    inputs: tuple[str, ...] = ()  # per arch, in the order of arches: the input digest of this run's image

    @property
    def image(self) -> str:
        return f"{self.name}:{self.version}"


@dataclass(frozen=True, kw_only=True)
class Plan:
    build: tuple[Target, ...]
    manifest: tuple[Manifest, ...]
