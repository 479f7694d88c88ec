"""The paths a commit range touched, from git."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .errors import UserError

ZERO = "0" * 40


def changed_files(repo: Path, rev_from: str, rev_to: str) -> list[str]:
    # Paths are relative to the top of the git tree, which may sit above --repo.
    top = _git(repo, "rev-parse", "--show-toplevel").strip()
    prefix = Path(repo).resolve().relative_to(Path(top).resolve()).as_posix()
    out = _git(repo, "diff", "--name-only", "-z", "--no-renames", rev_from, rev_to, "--")
    names = [n for n in out.split("\0") if n]
    if prefix == ".":
        return names
    return [n[len(prefix) + 1 :] for n in names if n.startswith(prefix + "/")]


def _git(repo: Path, *args: str) -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
        ).stdout
    except FileNotFoundError:
        raise UserError("git: not found on PATH; --changed-from needs it") from None
    except subprocess.CalledProcessError as exc:
        msg = (exc.stderr or "").strip().splitlines()
        raise UserError(f"git {' '.join(args[:1])}: {msg[0] if msg else 'failed'} (in {repo})") from None
