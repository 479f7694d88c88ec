"""What a build of a context embeds, found by the rules `sealos build` uses before it saves them into registry/."""

from __future__ import annotations

import json
import os
import sys
import re
import shutil
import subprocess
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from . import registry
from .errors import StepFailed, UserError
from .registry import Platforms

MANIFEST_SUFFIXES = (".yaml", ".yml")  # compared lowercased, as sealos does; .tmpl is compared as written
IMAGE_KEY = "image:"  # sealos matches it anywhere in a line, case-sensitively: `sidecarimage:` counts, `fooImage:` not
TAR_LIST = Path("images", "skopeo", "tar.txt")

# The docker reference grammar (distribution's reference package), written so that Python's backtracking stays linear:
# a separator is never empty, so a run of letters splits one way only.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*", re.ASCII)
_DOMAIN = re.compile(r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
                     r"(?::[0-9]+)?", re.ASCII)  # fmt: skip
_TAG = re.compile(r"\w[\w.-]{0,127}", re.ASCII)
_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")
_IMAGE_ID = re.compile(r"[a-f0-9]{64}")
NAME_MAX = 255


@dataclass(frozen=True, order=True)
class Ref:
    """A normalised image reference: docker.io/library/nginx:1, or a name and a digest."""

    name: str  # with its registry host
    tag: str = ""
    digest: str = ""

    def __str__(self) -> str:
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    @property
    def path(self) -> str:
        """The name without its registry host: where sealos stores the image in registry/."""
        return self.name.split("/", 1)[1]

    def saved_as(self) -> str:
        """The path, tag (latest when none) or digest that the saved image has in registry/."""
        if self.digest and not self.tag:
            return f"{self.path}@{self.digest}"
        return f"{self.path}:{self.tag or 'latest'}"


def parse_ref(text: str) -> Ref | None:
    """`text` as docker normalises it (nginx:1 → docker.io/library/nginx:1); None when it is no image reference."""
    if _IMAGE_ID.fullmatch(text):
        return None
    slash = text.find("/")
    first = text[:slash]
    if slash == -1 or ("." not in first and ":" not in first and first != "localhost"):
        domain, rest = "docker.io", text
    else:
        domain, rest = first, text[slash + 1 :]
    if domain == "index.docker.io":
        domain = "docker.io"
    if domain == "docker.io" and "/" not in rest:
        rest = "library/" + rest
    if rest.split(":", 1)[0].lower() != rest.split(":", 1)[0]:
        return None  # docker refuses upper case in a repository name
    rest, _, digest = rest.partition("@")
    path, colon, tag = rest.rpartition(":") if ":" in rest else (rest, "", "")
    if (
        not _DOMAIN.fullmatch(domain)
        or not _PATH.fullmatch(path)
        or (colon and not _TAG.fullmatch(tag))
        or (digest and not _DIGEST.fullmatch(digest))
        or (digest.startswith("sha256:") and not _SHA256.fullmatch(digest))
        or len(domain) + 1 + len(path) > NAME_MAX
    ):
        return None
    return Ref(f"{domain}/{path}", tag, digest)


@dataclass(frozen=True)
class Skipped:
    value: str
    source: str  # path relative to the context
    reason: str


@dataclass(frozen=True)
class Archive:
    """An images/skopeo/tar.txt entry: a docker-archive: or oci-archive: file and the name it is saved as."""

    source: str  # transport:path, the path relative to the context
    name: str


@dataclass(frozen=True)
class Listing:
    images: tuple[str, ...]  # normalised, sorted, without duplicates
    skipped: tuple[Skipped, ...] = ()
    archives: tuple[Archive, ...] = ()
    chart_notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Missing:
    image: str
    arch: str
    problem: str


def collect(context: Path) -> Listing:
    """Every image `sealos build` would save for `context`: images/shim, manifests/ and charts/; and its tar.txt."""
    found: dict[Ref, None] = {}
    skipped: set[Skipped] = set()
    for path in _walk(context / "images" / "shim"):
        found.update(dict.fromkeys(from_shim(_read(path, context), _rel(path, context))))
    for path in _walk(context / "manifests"):
        if path.suffix.lower() in MANIFEST_SUFFIXES or path.suffix == ".tmpl":
            refs, bad = from_manifest(_read(path, context))
            found.update(dict.fromkeys(refs))
            skipped.update(Skipped(value, _rel(path, context), "not an image reference") for value in bad)
    refs, bad, chart_notes = from_charts(context)
    found.update(dict.fromkeys(refs))
    skipped.update(bad)
    return Listing(
        tuple(sorted({str(ref) for ref in found})),
        tuple(sorted(skipped, key=lambda s: (s.source, s.value))),
        from_tar_list(context),
        tuple(chart_notes),
    )


def from_shim(text: str, source: str) -> list[Ref]:
    """One ref a line, trimmed and unquoted; blank and `#` lines skipped. sealos fails its build on any other line."""
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        value = _unquote(line.strip())
        if not value or value.startswith("#"):
            continue
        ref = parse_ref(value)
        if ref is None:
            raise UserError(f"{source}:{number}: {value!r} is not an image reference (sealos build fails on it)")
        # With a tag and a digest, sealos pulls and saves by the digest.
        out.append(Ref(ref.name, "", ref.digest) if ref.digest else ref)
    return out


def from_manifest(text: str) -> tuple[list[Ref], list[str]]:
    """The refs after `image:` on each line that is not a `#` comment; and the values that are no ref (skipped)."""
    refs, bad = [], []
    start = 0
    while (at := text.find(IMAGE_KEY, start)) != -1:
        begin = text.rfind("\n", 0, at) + 1
        end = text.find("\n", at)
        end = len(text) if end == -1 else end
        start = end + 1
        if text[begin:at].lstrip().startswith("#"):
            continue
        value = _unquote(text[at + len(IMAGE_KEY) : end].strip())
        if not value:
            continue
        ref = parse_ref(value)
        if ref is None:
            bad.append(value)
        else:
            # A tagged ref keeps its tag only, as sealos saves it.
            refs.append(Ref(ref.name, ref.tag) if ref.tag else ref)
    return refs, bad


def from_tar_list(context: Path) -> tuple[Archive, ...]:
    """images/skopeo/tar.txt: `docker-archive:FILE@NAME` or `oci-archive:FILE@NAME` a line, FILE beside tar.txt."""
    path = context / TAR_LIST
    if not path.is_file():
        return ()
    out = []
    for number, line in enumerate(_read(path, context).splitlines(), 1):
        if not line.strip():
            continue
        source, at, name = line.partition("@")
        transport, colon, file = source.partition(":")
        if not at or not colon or transport not in ("docker-archive", "oci-archive"):
            raise UserError(f"{TAR_LIST.as_posix()}:{number}: expected docker-archive:FILE@NAME or "
                            f"oci-archive:FILE@NAME, got {line!r}")  # fmt: skip
        out.append(Archive(f"{transport}:{(TAR_LIST.parent / file).as_posix()}", name))
    return tuple(out)


# --- charts ---------------------------------------------------------------------------------------------------------
# sealos renders each charts/<dir> or charts/*.tgz with Helm, values from charts/<chart name>.values.yaml, and reads
# the rendered text by the manifest rule. With helm on PATH we do the same; without it, only the values files.


def from_charts(context: Path) -> tuple[list[Ref], list[Skipped], list[str]]:
    charts = context / "charts"
    if not charts.is_dir():
        return [], [], []
    paths = sorted(p for p in charts.iterdir() if p.is_dir() or p.name.endswith("tgz"))
    if not paths:
        return [], [], []
    helm = shutil.which("helm")
    refs: list[Ref] = []
    skipped: list[Skipped] = []
    for path in paths:
        meta = _chart_meta(path, context)
        override = charts / f"{meta.get('name', '')}.values.yaml"
        override = override if override.is_file() else None
        if helm:
            got, bad = from_manifest(_helm_template(helm, path, override, context))
        else:
            values = _merge(_chart_values(path, context), _load(_read(override, context), _rel(override, context))
                            if override else None)  # fmt: skip
            parsed = [(v, parse_ref(v)) for v in from_values(values, meta.get("appVersion"))]
            got, bad = [r for _, r in parsed if r], [v for v, r in parsed if not r]
        refs += got
        skipped += [Skipped(v, _rel(path, context), "not an image reference") for v in bad]
    note = [] if helm else [
        "charts/ read without helm: only image and repository+tag keys of each chart's values are listed; "
        "put helm on PATH to render the charts as sealos does"
    ]  # fmt: skip
    return refs, skipped, note


def from_values(values: object, default_tag: object = None) -> list[str]:
    """Best effort without Helm: every `image:` string, or {registry?, repository, tag} (tag defaults to appVersion)."""
    out: list[str] = []
    stack = [values]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            image = node.get("image")
            if isinstance(image, str):
                out.append(image.strip())
            elif isinstance(image, Mapping) and isinstance(image.get("repository"), str):
                out += _from_repository(image, default_tag)
            stack += list(node.values())
        elif isinstance(node, list):
            stack += node
    return out


def _from_repository(image: Mapping, default_tag: object) -> list[str]:
    tag = image.get("tag") or default_tag
    if tag in (None, "") or isinstance(tag, (Mapping, list, bool)):
        return []
    ref = image["repository"].strip()
    registry = image.get("registry")
    if isinstance(registry, str) and registry.strip():
        ref = f"{registry.strip().rstrip('/')}/{ref}"
    return [f"{ref}:{str(tag).strip()}"]


def _merge(base: object, over: object) -> object:
    if isinstance(base, Mapping) and isinstance(over, Mapping):
        return {**base, **{k: _merge(base.get(k), v) for k, v in over.items()}}
    return base if over is None else over


def _chart_meta(path: Path, context: Path) -> dict:
    text = _chart_file(path, "Chart.yaml", context)
    meta = _load(text, f"{_rel(path, context)}/Chart.yaml") if text is not None else None
    return meta if isinstance(meta, dict) else {}


def _chart_values(path: Path, context: Path) -> object:
    text = _chart_file(path, "values.yaml", context)
    return _load(text, f"{_rel(path, context)}/values.yaml") if text is not None else {}


def _chart_file(path: Path, name: str, context: Path) -> str | None:
    """A file at the top of a chart directory or of a packaged chart (<chart>/<name> inside the .tgz)."""
    if path.is_dir():
        return _read(path / name, context) if (path / name).is_file() else None
    try:
        with tarfile.open(path) as tar:
            member = next((m for m in tar.getmembers() if m.name.count("/") == 1 and m.name.endswith("/" + name)),
                          None)  # fmt: skip
            data = tar.extractfile(member) if member else None
            return data.read().decode() if data else None
    except (OSError, tarfile.TarError, UnicodeDecodeError) as exc:
        raise UserError(f"{_rel(path, context)}: cannot read the packaged chart: {exc}") from None


def _helm_template(helm: str, chart: Path, values: Path | None, context: Path) -> str:
    cmd = [helm, "template", "dryrun", str(chart)] + (["--values", str(values)] if values else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise StepFailed(f"{_rel(chart, context)}: helm template failed: {last}")
    return proc.stdout


# --- output ---------------------------------------------------------------------------------------------------------


def check(listing: Listing, arches: tuple[str, ...], *, own: str | None, username: str | None,
          password: str | None, tls_verify: bool) -> tuple[Missing, ...]:
    """Ask the registry for each listed image, logged in to `own` with the credentials when given; what it lacks."""
    found = {}
    if listing.images:
        with registry.auth(own, username, password, tls_verify=tls_verify) as authfile:
            found = registry.platforms(list(listing.images), own=own, tls_verify=tls_verify, authfile=authfile)
    return missing(listing.images, arches, found)


def missing(images: Iterable[str], arches: Iterable[str], platforms: Mapping[str, Platforms]) -> tuple[Missing, ...]:
    """Each image × arch the registry lacks, and why."""
    out = []
    for ref in images:
        found = platforms[ref]
        for arch in arches:
            if found.error:
                out.append(Missing(ref, arch, f"could not check: {found.error}"))
            elif found.platforms is None:
                out.append(Missing(ref, arch, "image not found"))
            elif f"linux/{arch}" not in found.platforms:
                has = ", ".join(sorted(found.platforms)) or "no platform"
                out.append(Missing(ref, arch, f"no linux/{arch} (has {has})"))
    return tuple(out)


def report(result: Listing, missed: tuple[Missing, ...] | None, fmt: str) -> str:
    """json: {"images": [...], "archives"?: [...], "missing"?: [...]}; text: one image a line, then a table;
    save: one `SOURCE NAME` line per image and archive, NAME being where it goes in registry/ (what save.sh reads)."""
    if fmt == "save":
        lines = {Ref(*_parts(i)).saved_as(): f"docker://{i}" for i in result.images}
        lines |= {a.name: a.source for a in result.archives}
        return "".join(f"{source} {name}\n" for name, source in sorted(lines.items()))
    if fmt == "json":
        data: dict = {"images": list(result.images)}
        if result.archives:
            data["archives"] = [{"source": a.source, "name": a.name} for a in result.archives]
        if missed is not None:
            data["missing"] = [{"image": m.image, "arch": m.arch, "problem": m.problem} for m in missed]
        return json.dumps(data, indent=2) + "\n"
    text = "".join(f"{ref}\n" for ref in result.images)
    if missed:
        rows = [("IMAGE", "ARCH", "PROBLEM"), *((m.image, m.arch, m.problem) for m in missed)]
        widths = [max(len(row[i]) for row in rows) for i in range(2)]
        text += "\n" + "".join(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]}\n" for r in rows)
    return text


def notes(result: Listing) -> list[str]:
    return [*result.chart_notes, *(f"skipped {s.value!r} in {s.source}: {s.reason}" for s in result.skipped)]


def _parts(image: str) -> tuple[str, str, str]:
    ref = parse_ref(image)
    assert ref is not None, image  # every listed image was parsed once already
    return ref.name, ref.tag, ref.digest


# --- files ----------------------------------------------------------------------------------------------------------


def _walk(root: Path) -> list[Path]:
    """Regular files under root, in a stable order (sealos walks every level, without following links to folders)."""
    if not root.is_dir():
        return []
    out = []
    for top, dirs, names in os.walk(root):
        dirs.sort()
        out += [Path(top, n) for n in sorted(names) if os.path.isfile(os.path.join(top, n))]
    return out


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _load(text: str, source: str) -> object:
    import yaml

    from . import yamlio

    try:
        return yaml.load(text, Loader=yamlio.Loader)  # noqa: S506 - Loader derives from SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = f"{getattr(exc, 'problem', None) or exc}{where}".replace("\n", " ")
        raise UserError(f"{source}: not valid YAML: {problem}") from None


def _read(path: Path, context: Path) -> str:
    """A file of the context; a link that leads out of it is refused unread, so no file of the machine is shown."""
    try:
        inside = path.resolve().is_relative_to(context.resolve())
    except OSError:
        inside = False
    if not inside:
        raise UserError(f"{_rel(path, context)}: a link out of the context: expected a file in the context")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{_rel(path, context)}: cannot read: {exc}") from None


def _rel(path: Path, context: Path) -> str:
    return path.relative_to(context).as_posix()


def main(argv: list[str]) -> int:
    """`python3 -m clusterimg.images CONTEXT (--format save | --check --arch ARCH [--registry HOST] [--no-tls-verify])`:
    what save.sh and images.sh ask, as `clusterimg-gen images` answers it, with the standard library only, so a leg
    installs nothing. Only a chart's values need PyYAML: for a context with charts/ the scripts run clusterimg-gen."""
    import argparse

    parser = argparse.ArgumentParser(prog="python3 -m clusterimg.images")
    parser.add_argument("context", type=Path)
    parser.add_argument("--format", choices=["save", "text"], default="text")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--arch", action="append", choices=["amd64", "arm64"], default=[])
    parser.add_argument("--registry")
    parser.add_argument("--no-tls-verify", dest="tls_verify", action="store_false")
    args = parser.parse_args(argv)
    try:
        listing = collect(args.context)
        for note in notes(listing):
            print(f"warning: {note}", file=sys.stderr)
        missed = None
        if args.check:
            missed = check(listing, tuple(dict.fromkeys(args.arch or ["amd64", "arm64"])), own=args.registry,
                           username=os.environ.get("REGISTRY_USERNAME"), password=os.environ.get("REGISTRY_PASSWORD"),
                           tls_verify=args.tls_verify)  # fmt: skip
    except (UserError, StepFailed) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(report(listing, missed, args.format), end="")
    if missed:
        print(f"error: {len(missed)} image × arch pair(s) missing", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
