"""clusterimage.yaml → Config. Every check names the file, the key and the value."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import yaml

from . import defaults, release, yamlio
from .errors import ConfigError, UserError
from .model import (
    BRANCH,
    BUILD_ARG,
    COMPONENT,
    CONFIG_FILE,
    GITHUB_REPO,
    LABEL,
    REGISTRY,
    SECRET,
    TAG,
    TOOL_VERSION,
    VENDORED,
    ActionRef,
    AppOptions,
    Arch,
    Builder,
    Config,
    Mirror,
    PullRequests,
    Tools,
    default_runners,
)

KEYS = {
    "registry", "repository", "apps_dir", "arches", "runners", "schedule", "action", "branches", "builder",
    "tools", "tls_verify", "check_images", "save_images", "keepalive", "lock_refresh", "github_repo", "secrets",
    "sealos_version", "buildah_version", "apps", "setup", "pull_requests", "comment_builds", "mirrors", "evidence",
    "sigstore", "legacy_signatures",
}
APP_KEYS = {"arches", "versions", "template", "build_args", "schedule"}
MIRROR_KEYS = {"registry", "repository", "secrets", "tls_verify"}
# Text that GitHub or a shell would evaluate if it ever reached a workflow or a script.
INJECTION = re.compile(r"\$\{\{|\$\(|`|[\r\n\x00]")
CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))


def load(repo: Path, overrides: dict | None = None, *, check_tree: bool = True) -> Config:
    """Defaults, then clusterimage.yaml, then overrides (from flags)."""
    path = repo / CONFIG_FILE
    data: dict = {}
    if path.exists():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(CONFIG_FILE, "file", _first_line(exc), "valid YAML") from exc
        data = load_yaml(CONFIG_FILE, text)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(CONFIG_FILE, "(top level)", type(data).__name__, "a mapping of keys")
    data = {**data, **{k: v for k, v in (overrides or {}).items() if v is not None}}
    if "repository" not in data and not path.exists():
        raise UserError(f"no {CONFIG_FILE} in {repo} and no --repository: expected the image namespace, e.g. --repository labring")
    released = release.installed()
    if data.get("action") is None and released:
        data["action"] = released.action  # zero config: the very release this clusterimg-gen was built from
    config = parse(data)
    if released and config.action == released.action:
        config = dataclasses.replace(config, action_tag=released.tag)
    apps_dir = repo / config.apps_dir
    if check_tree and not apps_dir.is_dir():
        raise ConfigError(CONFIG_FILE, "apps_dir", config.apps_dir, "an existing directory in the repository")
    if check_tree and config.setup and not (repo / config.setup).is_file():
        raise ConfigError(CONFIG_FILE, "setup", config.setup, "an existing script in the repository")
    if check_tree and config.sigstore != defaults.SIGSTORE and not (repo / config.sigstore).is_file():
        expected = "public-good or a client trust config file in the repository"
        raise ConfigError(CONFIG_FILE, "sigstore", config.sigstore, expected)
    return config


def parse(data: dict) -> Config:
    c = Checker(CONFIG_FILE)
    for key in data:
        if key not in KEYS:
            c.fail(str(key), key, "one of " + ", ".join(sorted(KEYS)))
    for key, value in data.items():
        c.no_injection(key, value)
    kw: dict = {}
    if "registry" in data:
        kw["registry"] = c.match("registry", data["registry"], REGISTRY, "a registry host such as docker.io or ghcr.io")
    if "repository" not in data:
        c.fail("repository", None, "a namespace such as labring (set it in clusterimage.yaml or pass --repository)")
    repository = c.string("repository", data["repository"])
    if not all(COMPONENT.fullmatch(p) for p in repository.split("/")):
        c.fail("repository", repository, "lowercase OCI path components separated by /")
    kw["repository"] = repository
    for key in ("apps_dir", "setup"):
        if key in data:
            kw[key] = c.relative_path(key, data[key])
    if "arches" in data:
        kw["arches"] = c.arches("arches", data["arches"])
    if "runners" in data:
        runners = c.mapping("runners", data["runners"])
        merged = default_runners()
        for arch, labels in runners.items():
            merged[c.arch("runners", arch)] = c.labels(f"runners.{arch}", labels)
        kw["runners"] = merged
    kw["schedule"] = c.schedule("schedule", data["schedule"]) if "schedule" in data else derived_schedule(repository)
    if data.get("action") not in (None, VENDORED):
        kw["action"] = c.action("action", data["action"])
    if "branches" in data:
        kw["branches"] = tuple(c.match("branches", b, BRANCH, "a branch name") for b in c.seq("branches", data["branches"]))
    if "builder" in data:
        kw["builder"] = c.enum("builder", data["builder"], Builder)
    if "tools" in data:
        kw["tools"] = c.enum("tools", data["tools"], Tools)
    if "pull_requests" in data:
        kw["pull_requests"] = c.enum("pull_requests", data["pull_requests"], PullRequests)
    if "github_repo" in data:
        kw["github_repo"] = c.match("github_repo", data["github_repo"], GITHUB_REPO, "OWNER/NAME of the GitHub repository")
    if "lock_refresh" in data:
        kw["lock_refresh"] = c.schedule("lock_refresh", data["lock_refresh"])
    for key in ("tls_verify", "check_images", "save_images", "keepalive", "comment_builds", "evidence",
                "legacy_signatures"):
        if key in data:
            kw[key] = c.boolean(key, data[key])
    if data.get("sigstore") not in (None, defaults.SIGSTORE):
        kw["sigstore"] = c.relative_path("sigstore", data["sigstore"])
    if "secrets" in data:
        secrets = c.mapping("secrets", data["secrets"])
        for key, value in secrets.items():
            if key not in ("username", "password"):
                c.fail(f"secrets.{key}", key, "username or password")
            expected = "a secret name (letters, digits, _; not starting with GITHUB_ in any case)"
            kw[f"{key}_secret"] = c.match(f"secrets.{key}", value, SECRET, expected)
    if "mirrors" in data:
        kw["mirrors"] = c.mirrors("mirrors", data["mirrors"], Config(**kw))
    for tool in ("sealos_version", "buildah_version"):
        if tool in data:
            version = c.string(tool, data[tool]).removeprefix("v")
            kw[tool] = c.match(tool, version, TOOL_VERSION, "a release version such as 5.1.1")
    if "apps" in data:
        kw["apps"] = {
            c.match("apps", app, COMPONENT, "an app name"): c.app(f"apps.{app}", opts)
            for app, opts in c.mapping("apps", data["apps"]).items()
        }
    return Config(**kw)


def derived_schedule(repository: str) -> str:
    """Weekly, at a time spread by the repository name so many repos don't fire together."""
    n = int.from_bytes(repository.encode(), "big") % (59 * 24 * 7)
    return f"{n % 59 + 1} {n // 59 % 24} * * {n // (59 * 24)}"


def load_yaml(file: str, text: str):
    """The YAML document in `text`; a syntax error is a ConfigError that names `file` and the line."""
    try:
        return yamlio.load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(file, f"line {mark.line + 1}" if mark else "file", _first_line(exc), "valid YAML") from exc


def _first_line(exc: BaseException) -> str:
    return str(getattr(exc, "problem", None) or exc).splitlines()[0]


class Checker:
    def __init__(self, file: str):
        self.file = file

    def fail(self, key: str, value: object, expected: str):
        raise ConfigError(self.file, key, value, expected)

    def no_injection(self, key: str, value: object):
        if isinstance(value, str):
            if INJECTION.search(value):
                self.fail(key, value, "plain text without ${{, $(, backticks or newlines")
        elif isinstance(value, dict):
            for k, v in value.items():
                self.no_injection(f"{key}.{k}", k)
                self.no_injection(f"{key}.{k}", v)
        elif isinstance(value, list):
            for v in value:
                self.no_injection(key, v)

    def string(self, key: str, value: object) -> str:
        if not isinstance(value, str) or not value:
            self.fail(key, value, "a non-empty string")
        return value

    def match(self, key: str, value: object, rx: re.Pattern, expected: str) -> str:
        if not isinstance(value, str) or not rx.fullmatch(value):
            self.fail(key, value, expected)
        return value

    def relative_path(self, key: str, value: object) -> str:
        value = self.string(key, value)
        parts = Path(value).parts
        if not parts or Path(value).is_absolute() or ".." in parts:
            self.fail(key, value, "a relative path inside the repository")
        return Path(value).as_posix()

    def seq(self, key: str, value: object) -> list:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            self.fail(key, value, "a non-empty list")
        return value

    def mapping(self, key: str, value: object) -> dict:
        if not isinstance(value, dict):
            self.fail(key, value, "a mapping")
        return value

    def boolean(self, key: str, value: object) -> bool:
        if not isinstance(value, bool):
            self.fail(key, value, "true or false")
        return value

    def enum(self, key: str, value: object, kind):
        try:
            return kind(value)
        except ValueError:
            self.fail(key, value, "one of " + ", ".join(m.value for m in kind))

    def arch(self, key: str, value: object) -> Arch:
        return self.enum(key, value, Arch)

    def arches(self, key: str, value: object) -> tuple[Arch, ...]:
        arches = tuple(self.arch(key, a) for a in self.seq(key, value))
        if len(set(arches)) != len(arches):
            self.fail(key, value, "each arch once")
        return tuple(sorted(arches, key=list(Arch).index))

    def labels(self, key: str, value: object) -> tuple[str, ...]:
        return tuple(self.match(key, v, LABEL, "a runner label") for v in self.seq(key, value))

    def schedule(self, key: str, value: object) -> str | None:
        if value is False:
            return None
        if not isinstance(value, str):
            self.fail(key, value, "a 5-field cron string or false")
        fields = value.split()
        if len(fields) != 5:
            self.fail(key, value, "5 cron fields: minute hour day-of-month month day-of-week")
        for text, (lo, hi) in zip(fields, CRON_RANGES):
            if not _cron_field_ok(text, lo, hi):
                self.fail(key, value, f"each field in range; {text!r} is not within {lo}-{hi}")
        return " ".join(fields)

    def action(self, key: str, value: object) -> str:
        value = self.string(key, value)
        if value.startswith("./"):
            parts = Path(value).parts
            if ".." in parts or not re.fullmatch(r"\./[A-Za-z0-9_./-]*", value):
                self.fail(key, value, "a ./path inside the repository")
            return value
        try:
            ActionRef.parse(value)
        except ValueError:
            self.fail(key, value, f"a ./path, owner/repo@<40-hex commit SHA> (tags are not immutable), or {VENDORED}")
        return value

    def mirror_secrets(self, key: str, value: object) -> dict[str, str]:
        names = self.mapping(key, value)
        if set(names) != {"username", "password"}:
            self.fail(key, value, "the names of two secrets: {username: NAME, password: NAME}")
        expected = "a secret name (letters, digits, _; not starting with GITHUB_ in any case)"
        return {f"{k}_secret": self.match(f"{key}.{k}", v, SECRET, expected) for k, v in names.items()}

    def mirrors(self, key: str, value: object, primary: Config) -> tuple[Mirror, ...]:
        if not isinstance(value, list):
            self.fail(key, value, "a list of registries, each with registry and secrets")
        mirrors: list[Mirror] = []
        for i, entry in enumerate(value):
            at = f"{key}[{i}]"
            entry = self.mapping(at, entry)
            for k in entry:
                if k not in MIRROR_KEYS:
                    self.fail(f"{at}.{k}", k, "one of " + ", ".join(sorted(MIRROR_KEYS)))
            for k in ("registry", "secrets"):
                if k not in entry:
                    self.fail(f"{at}.{k}", None, "a value; each mirror names its registry and its secrets")
            registry = self.match(f"{at}.registry", entry["registry"], REGISTRY, "a registry host such as ghcr.io")
            repository = self.string(f"{at}.repository", entry.get("repository", primary.repository))
            if not all(COMPONENT.fullmatch(p) for p in repository.split("/")):
                self.fail(f"{at}.repository", repository, "lowercase OCI path components separated by /")
            mirror = Mirror(
                registry=registry, repository=repository, **self.mirror_secrets(f"{at}.secrets", entry["secrets"]),
                tls_verify=self.boolean(f"{at}.tls_verify", entry.get("tls_verify", True)),
            )
            if mirror.prefix in {primary.image_name("").rstrip("/"), *(m.prefix for m in mirrors)}:
                self.fail(at, mirror.prefix, "a registry and repository that neither the primary nor another mirror has")
            # One step logs in to both, and a registry host holds one login.
            if registry == primary.registry and (mirror.username_secret, mirror.password_secret) != (
                    primary.username_secret, primary.password_secret):
                self.fail(f"{at}.secrets", entry["secrets"], f"the primary's secrets, since {registry} is its registry too")
            mirrors.append(mirror)
        return tuple(mirrors)

    def app(self, key: str, value: object) -> AppOptions:
        opts = self.mapping(key, value if value is not None else {})
        for k in opts:
            if k not in APP_KEYS:
                self.fail(f"{key}.{k}", k, "one of " + ", ".join(sorted(APP_KEYS)))
        kw: dict = {}
        if "arches" in opts:
            kw["arches"] = self.arches(f"{key}.arches", opts["arches"])
        if "versions" in opts:
            versions = self.seq(f"{key}.versions", opts["versions"])
            kw["versions"] = tuple(self.match(f"{key}.versions", v, TAG, "an OCI tag") for v in versions)
            if len(set(kw["versions"])) != len(versions):
                self.fail(f"{key}.versions", versions, "each version once")
        if "template" in opts:
            kw["template"] = self.match(f"{key}.template", opts["template"], TAG, "the name of a directory of the app")
        if "build_args" in opts:
            args = self.mapping(f"{key}.build_args", opts["build_args"])
            for name, val in args.items():
                self.match(f"{key}.build_args", name, BUILD_ARG, "a build-arg name")
                if not isinstance(val, str):
                    self.fail(f"{key}.build_args.{name}", val, "a string")
            kw["build_args"] = tuple(sorted(args.items()))
        if "schedule" in opts:
            kw["schedule"] = self.schedule(f"{key}.schedule", opts["schedule"]) or False
        return AppOptions(**kw)


def _cron_field_ok(text: str, lo: int, hi: int) -> bool:
    for part in text.split(","):
        m = re.fullmatch(r"(\*|(\d+)(?:-(\d+))?)(?:/(\d+))?", part)
        if not m:
            return False
        start, end, step = m.group(2), m.group(3), m.group(4)
        if step is not None and int(step) < 1:
            return False
        if start is not None:
            a, b = int(start), int(end) if end is not None else int(start)
            if not (lo <= a <= b <= hi):
                return False
    return True
