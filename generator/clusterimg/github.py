"""The only module that talks to GitHub. Every call goes through ghapi; every failure becomes one GitHubError line."""

from __future__ import annotations

import hashlib
import os
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx2
from fasttransport.errors import APIError
from ghapi.core import GhApi
from ghapi.page import sync_paged

from .errors import GitHubError, UserError
from .model import GITHUB_REPO

API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
TOKEN_VARS = ("GITHUB_TOKEN", "GH_TOKEN")
PAGE = 100  # GitHub's largest page size
NESTED_TAGS = 5  # a tag object may point at another tag object; real chains are one deep


@dataclass(frozen=True)
class Asset:
    id: int
    name: str
    digest: str | None  # "sha256:<hex>", which GitHub computes for assets uploaded since mid-2025


@dataclass(frozen=True)
class Release:
    repo: str
    tag: str
    assets: dict[str, Asset]


def token() -> str | None:
    return next((os.environ[v] for v in TOKEN_VARS if os.environ.get(v)), None)


def api_url(flag: str | None) -> str:
    """--api-url, else GITHUB_API_URL (set on Actions runners and GHES), else github.com."""
    url = (flag or os.environ.get("GITHUB_API_URL") or API_URL).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UserError(f"--api-url / GITHUB_API_URL: {url!r}: expected an http(s) URL such as {API_URL}")
    return url


def connect(flag: str | None, *, need_token: bool = False) -> Client:
    tok = token()
    if need_token and not tok:
        raise UserError("no GitHub token: set GITHUB_TOKEN or GH_TOKEN (it needs actions:write on the repository)")
    return Client(api_url(flag), tok)


def check_repo(slug: str) -> str:
    if not GITHUB_REPO.fullmatch(slug):
        raise UserError(f"--github-repo: {slug!r}: expected OWNER/NAME")
    return slug


def parse_remote(url: str) -> str:
    """OWNER/NAME from a git remote: https://host/o/n(.git), ssh://git@host[:port]/o/n(.git) or git@host:o/n(.git)."""
    url = url.strip()
    if "://" in url:
        path = urlsplit(url).path
    elif re.match(r"(?:[^@/:]+@)?[^@/:]+:", url):  # scp-like: [user@]host:path
        path = url.split(":", 1)[1]
    else:
        path = ""
    slug = "/".join(path.strip("/").removesuffix(".git").split("/")[-2:])
    if not GITHUB_REPO.fullmatch(slug):
        shown = re.sub(r"//[^/@]*@", "//", url)  # never echo credentials embedded in a remote URL
        raise UserError(f"git remote origin: {shown!r}: expected a repository URL; pass --github-repo OWNER/NAME")
    return slug


def origin(repo: Path) -> str:
    """OWNER/NAME of the git remote `origin` of the checkout at `repo`."""
    from .git import _git

    try:
        url = _git(repo, "remote", "get-url", "origin")
    except UserError as exc:
        raise UserError(f"{exc}; pass --github-repo OWNER/NAME") from None
    return parse_remote(url)


class Client:
    def __init__(self, url: str, token: str | None):
        self.url, self.authed = url, bool(token)
        # authenticate=False: ghapi would read its own variables (and warn without one); we set the one header here.
        self.api = GhApi(gh_host=url, authenticate=False, sync=True)
        self.api.headers.update({"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION})
        if token:
            self.api.headers["Authorization"] = f"Bearer {token}"
        # One client for every call: ghapi would otherwise build a new one (TLS setup, no keep-alive) per request.
        transport = self.api.transport
        transport.client = httpx2.Client(timeout=transport.timeout, follow_redirects=True)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.api.transport.close()

    def tag_commit(self, repo: str, tag: str) -> str:
        """The commit a tag names, peeling annotated tags (ref → tag object → commit)."""
        what = f"{repo} tag {tag}"
        with self._errors(what):
            ref = self.api.git.get_ref(ref=f"tags/{tag}", **_route(repo))
            obj = ref.object
            for _ in range(NESTED_TAGS):
                if obj.type != "tag":
                    break
                obj = self.api.git.get_tag(tag_sha=obj.sha, **_route(repo)).object
        if obj.type != "commit":
            raise GitHubError(f"{what}: points at a {obj.type}, not a commit")
        return _sha1(what, obj.sha)

    def commit_tag(self, repo: str, sha: str) -> str:
        """The most specific tag naming commit `sha` (v1.2.3 over v1), or "" when none does; the commit must exist."""
        with self._errors(f"{repo} commit {sha}"):
            self.api.git.get_commit(commit_sha=sha, **_route(repo))
        tags = self._all(f"{repo} tags", self.api.repos.list_tags, **_route(repo))
        names = [t.name for t in tags if t.commit.sha == sha]
        return max(names, key=lambda n: (n.count("."), len(n), n), default="")

    def release(self, repo: str, tag: str | None) -> Release:
        """The release with `tag`, or the latest one, with every asset."""
        what = f"{repo} release {tag}" if tag else f"{repo} latest release"
        with self._errors(what):
            if tag:
                rel = self.api.repos.get_release_by_tag(tag=tag, **_route(repo))
            else:
                rel = self.api.repos.get_latest_release(**_route(repo))
        # The assets embedded in a release are not promised complete; the listing is, page by page.
        assets = self._all(f"{what} assets", self.api.repos.list_release_assets, release_id=rel.id, **_route(repo))
        return Release(repo, rel.tag_name, {a.name: Asset(a.id, a.name, a.get("digest")) for a in assets})

    def download(self, release: Release, name: str) -> bytes:
        """An asset's bytes through the API (works for private repos and GHES), checked against GitHub's digest."""
        what = f"{release.repo} release {release.tag} asset {name}"
        asset = release.assets.get(name)
        if asset is None:
            raise GitHubError(f"{release.repo} release {release.tag}: has no asset {name}")
        with self._errors(what):
            resp = self.api.repos.get_release_asset(
                asset_id=asset.id, headers_={"Accept": "application/octet-stream"}, raw_=True, **_route(release.repo)
            )
        data = resp.content
        if asset.digest and asset.digest.lower() != "sha256:" + hashlib.sha256(data).hexdigest():
            raise GitHubError(f"{what}: downloaded bytes do not match GitHub's digest {asset.digest}")
        return data

    def dispatch(self, repo: str, workflow: str, ref: str, inputs: dict[str, str]) -> None:
        with self._errors(f"{repo} workflow {workflow} on {ref}"):
            self.api.actions.create_workflow_dispatch(workflow_id=workflow, ref=ref, inputs=inputs, **_route(repo))

    def _all(self, what: str, op, **kw) -> list:
        """Every item of a listing: pages are requested until one comes back empty."""
        with self._errors(what):
            return [item for page in sync_paged(op, per_page=PAGE, **kw) for item in page]

    @contextmanager
    def _errors(self, what: str):
        try:
            yield
        except APIError as exc:
            raise GitHubError(self._explain(what, exc)) from None
        except httpx2.HTTPError as exc:  # a transport failure that ghapi did not wrap
            raise GitHubError(f"{what}: cannot reach {self.url}: {_one_line(str(exc) or type(exc).__name__)}") from None

    def _explain(self, what: str, exc: APIError) -> str:
        status = exc.status_code
        if status is None:
            return f"{what}: cannot reach {self.url}: {_one_line(exc.message)}"
        headers = exc.response.headers if exc.response is not None else {}
        message = _one_line(exc.message)
        if status == 401:
            return f"{what}: bad credentials (401 from {self.url}); check GITHUB_TOKEN or GH_TOKEN"
        limited = headers.get("x-ratelimit-remaining") == "0" or "rate limit" in message.lower()
        if status == 429 or (status == 403 and limited):
            more = "" if self.authed else "; a token (GITHUB_TOKEN or GH_TOKEN) raises the limit"
            return f"{what}: GitHub rate limit exceeded ({status}); {_reset(headers)}{more}"
        if status == 404:
            more = "" if self.authed else " (a private repository needs GITHUB_TOKEN or GH_TOKEN)"
            return f"{what}: not found (404){more}"
        return f"{what}: {status} {message}"


def _route(repo: str) -> dict[str, str]:
    owner, _, name = repo.partition("/")
    return {"owner": owner, "repo": name}


def _sha1(what: str, sha: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{40}", sha or ""):
        raise GitHubError(f"{what}: GitHub returned {sha!r}, not a 40-hex commit SHA")
    return sha


def _reset(headers) -> str:
    reset, retry = headers.get("x-ratelimit-reset", ""), headers.get("retry-after", "")
    if reset.isdigit():
        at = int(reset)
        wait = max(0, -(-(at - int(time.time())) // 60))
        return f"it resets at {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(at))} (in {wait} min)"
    if retry.isdigit():
        return f"retry after {retry} s"
    return "try again later"


def _one_line(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= 200 else text[:197] + "..."
