"""What a build of a context embeds: the images in images/shim/*, manifests/ and charts/*/values.yaml."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import yamlio
from .errors import UserError
from .registry import Platforms

MANIFEST_SUFFIXES = (".yaml", ".yml", ".tmpl")
# The fallback for a .tmpl that only becomes YAML once rendered.
IMAGE_LINE = re.compile(r"^\s*(?:-\s*)?image:\s*(.*?)\s*(?:#.*)?$")


@dataclass(frozen=True)
class Skipped:
    value: str
    source: str  # path relative to the context
    reason: str


@dataclass(frozen=True)
class Listing:
    images: tuple[str, ...]  # sorted, without duplicates
    skipped: tuple[Skipped, ...] = ()


@dataclass(frozen=True)
class Missing:
    image: str
    arch: str
    problem: str


def collect(context: Path) -> Listing:
    """Read images/shim/*, manifests/**/*.{yaml,yml,tmpl} and charts/*/values.yaml under `context`."""
    found: list[tuple[str, str]] = []
    shim = context / "images" / "shim"
    for path in sorted(p for p in shim.glob("*") if p.is_file()):
        found += [(ref, _rel(path, context)) for ref in from_shim(_read(path, context))]
    manifests = context / "manifests"
    for path in sorted(p for p in manifests.rglob("*") if p.is_file() and p.suffix in MANIFEST_SUFFIXES):
        found += [(ref, _rel(path, context)) for ref in from_manifest(_read(path, context), _rel(path, context))]
    for path in sorted((context / "charts").glob("*/values.yaml")):
        app_version = _app_version(path.parent / "Chart.yaml", context)
        docs = _load(_read(path, context), _rel(path, context))
        found += [(ref, _rel(path, context)) for ref in from_documents(docs, app_version)]
    return listing(found)


def listing(found: Iterable[tuple[str, str]]) -> Listing:
    """(value, source) pairs → the sorted, deduplicated images, and the templated values left out."""
    images, skipped = set(), set()
    for value, source in found:
        if "{{" in value:
            skipped.add(Skipped(value, source, "template syntax"))
        elif value:
            images.add(value)
    return Listing(tuple(sorted(images)), tuple(sorted(skipped, key=lambda s: (s.source, s.value))))


def from_shim(text: str) -> list[str]:
    """One ref a line; `#` starts a comment (a ref never holds one)."""
    return [ref for line in text.splitlines() if (ref := line.split("#", 1)[0].strip())]


def from_manifest(text: str, source: str) -> list[str]:
    """The `image:` values of a manifest; a .tmpl that is not YAML yet is read line by line."""
    try:
        docs = _load(text, source)
    except UserError:
        if not source.endswith(".tmpl"):
            raise
        return [m.group(1).strip("\"'") for line in text.splitlines() if (m := IMAGE_LINE.match(line))]
    return from_documents(docs)


def from_documents(docs: Iterable[object], default_tag: str | None = None) -> list[str]:
    """Every `image:` in nested mappings and lists: a string, or {registry?, repository, tag}."""
    out: list[str] = []
    stack = list(docs)
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


def _from_repository(image: Mapping, default_tag: str | None) -> list[str]:
    # Charts commonly render an empty tag as the chart's appVersion.
    tag = image.get("tag") or default_tag
    if tag is None or isinstance(tag, (Mapping, list, bool)):
        return []
    ref = image["repository"].strip()
    registry = image.get("registry")
    if isinstance(registry, str) and registry.strip():
        ref = f"{registry.strip().rstrip('/')}/{ref}"
    return [f"{ref}:{str(tag).strip()}"]


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
    """json: {"images": [...], "missing": [...]} (missing only after a check); text: one image a line, then a table."""
    if fmt == "json":
        data: dict = {"images": list(result.images)}
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
    return [f"skipped {s.value!r} in {s.source}: {s.reason}" for s in result.skipped]


def _app_version(chart: Path, context: Path) -> str | None:
    if not chart.is_file():
        return None
    meta = next(iter(_load(_read(chart, context), _rel(chart, context))), None)
    version = meta.get("appVersion") if isinstance(meta, Mapping) else None
    return str(version) if version not in (None, "") else None


def _load(text: str, source: str) -> list:
    try:
        return list(yaml.load_all(text, Loader=yamlio.Loader))  # noqa: S506 - Loader derives from SafeLoader
    except yaml.YAMLError as exc:
        raise UserError(f"{source}: not valid YAML: {_problem(exc)}") from None


def _problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}" if mark is not None else ""
    return f"{getattr(exc, 'problem', None) or exc}{where}".replace("\n", " ")


def _read(path: Path, context: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{_rel(path, context)}: cannot read: {exc}") from None


def _rel(path: Path, context: Path) -> str:
    return path.relative_to(context).as_posix()
