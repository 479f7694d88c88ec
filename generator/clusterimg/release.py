"""Where this package was released from: release.json, which the release workflow writes into the wheel."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import FatalError
from .model import COMMIT_SHA, GITHUB_REPO, RELEASE_TAG, Release

FILE = Path(__file__).resolve().parent / "release.json"


def installed() -> Release | None:
    """The release of this installed package; None in a source tree, which has no release.json."""
    try:
        data = json.loads(FILE.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise FatalError(f"{FILE}: unreadable release metadata ({exc}); reinstall clusterimg-gen") from None
    if not isinstance(data, dict):
        data = {}
    repository, sha, tag = (data.get(k) for k in ("repository", "sha", "tag"))
    if not (
        isinstance(repository, str) and GITHUB_REPO.fullmatch(repository)
        and isinstance(sha, str) and COMMIT_SHA.fullmatch(sha)
        and isinstance(tag, str) and RELEASE_TAG.fullmatch(tag)
    ):  # fmt: skip
        raise FatalError(f"{FILE}: expected repository OWNER/NAME, a 40-hex sha and a vX.Y.Z tag; reinstall clusterimg-gen")
    return Release(repository=repository, sha=sha, tag=tag)
