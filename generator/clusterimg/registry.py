"""Registry lookups through skopeo, with bounded retries and a bounded number in flight."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import defaults
from .errors import StepFailed, UserError

PARALLEL = 8


@dataclass(frozen=True)
class Published:
    """What a tag holds now: its manifest digest, its config labels and, for a list, the digests it lists."""

    digest: str
    labels: dict
    listed: frozenset[str] = frozenset()


def published(refs: list[str], *, tls_verify: bool, retries: int = defaults.RETRIES, raw: bool = False) -> dict[str, Published | None]:
    """ref → what it holds (with `raw`, read as a list), or None when the registry does not have it or could not be
    asked; a failed lookup warns and counts as absent, so the image is built rather than skipped."""
    with ThreadPoolExecutor(PARALLEL) as pool:
        return dict(zip(refs, pool.map(lambda r: _published(r, tls_verify, retries, raw), refs)))


def _published(ref: str, tls_verify: bool, retries: int, raw: bool) -> Published | None:
    cmd = ["skopeo", "inspect", _tls(tls_verify), *(["--raw"] if raw else []), f"docker://{ref}"]
    try:
        digest, data = _read(cmd, retries)
    except _Absent:
        return None
    except _Failed as exc:
        print(f"warning: could not inspect {ref} ({exc}); building it", file=sys.stderr)
        return None
    if raw:
        listed = frozenset(m.get("digest", "") for m in data.get("manifests") or [])
        return Published(digest=digest, labels={}, listed=listed)
    return Published(digest=data.get("Digest", ""), labels=data.get("Labels") or {})


def arch_digests(refs: list[str], *, own: str, tls_verify: bool, retries: int = defaults.RETRIES) -> dict[str, dict[str, str] | None]:
    """ref → {arch: manifest digest} for a list's linux entries, {"*": digest} for a single image, or None when it
    could not be read. One lookup per ref serves every arch; TLS as upstream_tls says."""
    with ThreadPoolExecutor(PARALLEL) as pool:
        return dict(zip(refs, pool.map(lambda r: _arch_digests(r, upstream_tls(r, own, tls_verify), retries), refs)))


def host_of(ref: str) -> str:
    """The registry host of an image reference, as docker resolves it."""
    first, sep, _ = ref.partition("/")
    return first if sep and ("." in first or ":" in first or first == "localhost") else "docker.io"


def _arch_digests(ref: str, tls: list[str], retries: int) -> dict[str, str] | None:
    try:
        digest, data = _read(["skopeo", "inspect", *tls, "--raw", f"docker://{ref}"], retries)
    except (_Absent, _Failed) as exc:
        print(f"warning: could not look up {ref} ({exc}); not rebuilding for it", file=sys.stderr)
        return None
    if "manifests" in data:
        return {m["platform"]["architecture"]: m["digest"] for m in data["manifests"]
                if m.get("platform", {}).get("os") == "linux"}  # fmt: skip
    return {"*": digest}


def _read(cmd: list[str], retries: int) -> tuple[str, dict]:
    """What skopeo printed, parsed, and the sha256 digest of its bytes (a manifest's digest, with --raw)."""
    text = _skopeo(cmd, retries)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest(), json.loads(text)


# skopeo's words for "no such image", and for an answer that asking again will not change.
ABSENT = ("manifest unknown", "name unknown", "not found")
FINAL = ("invalid reference", "unauthorized", "authentication required", "denied")


@dataclass(frozen=True)
class Platforms:
    """What the registry holds for one ref: its os/arch pairs, or None when it has no such image."""

    platforms: frozenset[str] | None
    error: str = ""  # why the registry could not be asked


class _Absent(Exception):
    pass


class _Failed(Exception):
    pass


def platforms(
    refs: list[str], *, own: str | None, tls_verify: bool, retries: int = defaults.RETRIES, authfile: str | None = None
) -> dict[str, Platforms]:
    """ref → the platforms it exists for: a list's entries, or a single manifest's config os/architecture.
    `tls_verify` applies to the registry `own` only (see upstream_tls)."""
    with ThreadPoolExecutor(PARALLEL) as pool:
        return dict(zip(refs, pool.map(
            lambda r: _platforms(r, upstream_tls(r, own, tls_verify), retries, authfile), refs)))


def upstream_tls(ref: str, own: str | None, tls_verify: bool) -> list[str]:
    """skopeo's TLS flag for ref: `tls_verify` for the configured registry `own`; none for any other, whose TLS is
    verified unless the machine's registries.conf marks it insecure."""
    return [_tls(tls_verify)] if host_of(ref) == own else []


def _platforms(ref: str, tls: list[str], retries: int, authfile: str | None) -> Platforms:
    cmd = ["skopeo", "inspect", *tls]
    cmd += ["--authfile", authfile] if authfile else []
    try:
        found = platforms_of(json.loads(_skopeo([*cmd, "--raw", f"docker://{ref}"], retries)))
        if found is None:
            found = platforms_of(json.loads(_skopeo([*cmd, "--raw", "--config", f"docker://{ref}"], retries)))
    except _Absent:
        return Platforms(None)
    except (_Failed, ValueError, AttributeError) as exc:
        return Platforms(frozenset(), str(exc) or type(exc).__name__)
    return Platforms(frozenset(found or ()))


def platforms_of(doc: dict) -> set[str] | None:
    """os/arch pairs named by a manifest list, an image config or a schema 1 manifest; None for a schema 2 manifest."""
    entries = index_entries(doc)
    if entries is not None:
        return {platform for platform, _ in entries if platform is not None}
    if "architecture" in doc:
        return {f"{doc.get('os') or 'linux'}/{doc['architecture']}"}
    return None


def index_entries(doc: object) -> list[tuple[str | None, str]] | None:
    """(os/arch, digest) of each entry of a manifest list, in list order, the platform None for an entry without one;
    None when `doc` is not a list. The fan-in (manifest.sh) reads its lists with this too."""
    if not isinstance(doc, dict) or not isinstance(doc.get("manifests"), list):
        return None
    entries = []
    for m in doc["manifests"]:
        if isinstance(m, dict):
            p = m.get("platform")
            platform = f"{p.get('os', '')}/{p.get('architecture', '')}" if isinstance(p, dict) else None
            entries.append((platform, str(m.get("digest", ""))))
    return entries


def _tls(verify: bool) -> str:
    return f"--tls-verify={'true' if verify else 'false'}"


def _skopeo(cmd: list[str], retries: int, stdin: str | None = None) -> str:
    """skopeo's stdout, with bounded retries; _Absent at once for a missing image, _Failed after the last attempt."""
    err = "no answer"
    for attempt in range(retries):
        try:
            proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60)
        except FileNotFoundError:
            raise UserError("skopeo: not found on PATH; registry lookups need it") from None
        except subprocess.TimeoutExpired:
            proc = None
        if proc is not None and proc.returncode == 0:
            return proc.stdout
        err = _message(proc.stderr) if proc is not None else "timed out"
        if any(word in err.lower() for word in ABSENT):
            raise _Absent(err)
        if any(word in err.lower() for word in FINAL):
            raise _Failed(err)
        if attempt + 1 < retries:
            time.sleep(defaults.retry_delay(attempt))
    raise _Failed(f"{err} (after {retries} attempts)")


def _message(stderr: str) -> str:
    """The last line skopeo wrote, without its logger's time= and level= fields."""
    last = (stderr.strip().splitlines() or ["no answer"])[-1]
    logged = re.search(r'msg="((?:[^"\\]|\\.)*)"', last)
    return logged.group(1).replace('\\"', '"') if logged else last


@contextmanager
def auth(
    host: str, username: str | None, password: str | None, *, tls_verify: bool, retries: int = defaults.RETRIES
) -> Iterator[str | None]:
    """An auth file logged in to `host` when a username is given: REGISTRY_AUTH_FILE when set (the action's scripts
    set one for the step and remove it), else a temporary one. Without a username, None, for the existing auth."""
    if not username:
        yield None
        return
    if not password:
        raise UserError(f"a username was given for {host} but no password")
    if "\n" in password or "\r" in password:  # no registry takes one; refused before skopeo ever sees it
        raise UserError(f"the password for {host} contains a line break; it must be one line")
    with tempfile.TemporaryDirectory(prefix="clusterimg-auth-") as tmp:
        authfile = os.environ.get("REGISTRY_AUTH_FILE") or str(Path(tmp) / "auth.json")
        cmd = ["skopeo", "login", "--authfile", authfile, _tls(tls_verify),
               "--username", username, "--password-stdin", host]  # fmt: skip
        try:
            _skopeo(cmd, retries, stdin=password)
        except (_Absent, _Failed) as exc:
            raise StepFailed(f"login to {host} as {username} failed: {exc}") from None
        yield authfile


def main(argv: list[str]) -> int:
    """registry index: the manifest list JSON on stdin as `<os>/<arch> <digest>` lines (`none/none` for an entry
    without a platform); exit 1 when it is not a list."""
    if argv != ["index"]:
        print("usage: python -m clusterimg.registry index < LIST.json", file=sys.stderr)
        return 2
    try:
        entries = index_entries(json.loads(sys.stdin.read()))
    except ValueError:
        entries = None
    if entries is None:
        return 1
    for platform, digest in entries:
        print(platform or "none/none", digest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
