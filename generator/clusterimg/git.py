"""What git knows of the tree: the paths a commit range touched, and when each context last changed."""

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


def last_change_times(repo: Path, contexts: list[str]) -> dict[str, int]:
    """context → commit time of the newest commit that touched it; {} outside a git work tree or history."""
    wanted = set(contexts)
    if not wanted:
        return {}
    try:
        _git(repo, "rev-parse", "--verify", "-q", "HEAD")
    except UserError:
        return {}
    cmd = ["git", "-C", str(repo), "-c", "core.quotepath=off", "log", "--format=@%ct", "--name-only",
           "--no-renames", "--relative", "--", *sorted(wanted)]
    found: dict[str, int] = {}
    when = 0
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, errors="replace") as proc:
        for line in proc.stdout:
            line = line.rstrip("\n")
            if line.startswith("@") and line[1:].isdigit():
                when = int(line[1:])
                continue
            # Newest first: the first commit that names a path under a context is its last change.
            for context in [c for c in wanted if c not in found and (line == c or line.startswith(c + "/"))]:
                found[context] = when
            if len(found) == len(wanted):
                proc.kill()
                break
    return found


def is_ancestor(repo: Path, sha: str, head: str = "HEAD") -> bool:
    """Whether commit `sha` is in `head`'s history (False for a commit this clone does not have)."""
    proc = subprocess.run(["git", "-C", str(repo), "merge-base", "--is-ancestor", sha, head], capture_output=True)
    return proc.returncode == 0


def origin_url(repo: Path) -> str:
    return _git(repo, "remote", "get-url", "origin")


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
