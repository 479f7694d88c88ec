"""The only module that writes generated files: all of them or none, and only when they differ."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import UserError
from .header import is_generated
from .model import VENDOR_DIR

OWNED_DIRS = (".github/workflows", VENDOR_DIR)


def diff(repo: Path, files: dict[str, str]) -> tuple[list[str], list[str]]:
    """(paths to write, stale paths to remove): what `write` would do."""
    return _changed(repo, files), _stale(repo, files)


def write(repo: Path, files: dict[str, str]) -> tuple[list[str], list[str]]:
    """Write what changed and remove the stale files that carry our header."""
    _inside(repo, OWNED_DIRS)
    stale = _stale(repo, files)
    _inside(repo, stale)
    changed = put(repo, files)
    for rel in stale:
        (repo / rel).unlink()
    return changed, stale


def put(repo: Path, files: dict[str, str]) -> list[str]:
    """Write each file whose content differs, all of them or none; return their paths."""
    _inside(repo, files)
    changed = _changed(repo, files)
    staged: list[tuple[str, Path]] = []
    try:
        for rel in changed:
            target = repo / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            staged.append((tmp, target))
            with os.fdopen(fd, "wb") as fh:
                fh.write(files[rel].encode("utf-8"))
            os.chmod(tmp, 0o755 if rel.endswith(".sh") else 0o644)
    except BaseException:
        for tmp, _ in staged:
            os.unlink(tmp)
        raise
    # Every file is on disk before the first rename, so a failure above leaves the tree untouched.
    for tmp, target in staged:
        os.replace(tmp, target)
    return changed


def _inside(repo: Path, rels) -> None:
    """Refuse a path that a symlink leads out of the repository, before anything is written or removed."""
    root = repo.resolve()
    for rel in rels:
        real = (repo / rel).resolve()
        if not real.is_relative_to(root):
            raise UserError(f"{rel}: a symlink leads to {real}, outside the repository; expected a path inside it")


def _changed(repo: Path, files: dict[str, str]) -> list[str]:
    changed = []
    for rel, text in sorted(files.items()):
        try:
            if (repo / rel).read_bytes() == text.encode("utf-8"):
                continue
        except FileNotFoundError:
            pass
        changed.append(rel)
    return changed


def _stale(repo: Path, files: dict[str, str]) -> list[str]:
    stale = []
    for owned in OWNED_DIRS:
        base = repo / owned
        if not base.is_dir():
            continue
        for path in sorted(p for p in base.rglob("*") if p.is_file()):
            rel = path.relative_to(repo).as_posix()
            if rel not in files and _carries_header(path):
                stale.append(rel)
    return stale


def _carries_header(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as fh:
            return is_generated("".join(fh.readline() for _ in range(3)))
    except (UnicodeDecodeError, OSError):
        return False
