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
# The most of one API answer read into memory: GitHub's pages of 100 items stay far below it.
MAX_RESPONSE = 32 * 2**20


@dataclass(frozen=True)
class Asset:
    id: int
    name: str
    size: int
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
    from .git import origin_url

    try:
        url = origin_url(repo)
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
        # Uncompressed answers, so the transport's cap bounds what is held in memory.
        self._transport = _CappedTransport()
        self.api.transport.client = httpx2.Client(
            timeout=self.api.transport.timeout, follow_redirects=True, transport=self._transport,
            headers={"Accept-Encoding": "identity"},
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.api.transport.close()

    def tag_commit(self, repo: str, tag: str) -> str:
        """The commit a tag names, peeling annotated tags (ref → tag object → commit)."""
        what = f"{repo} tag {tag}"
        with self._errors(what):
            obj = _field(self.api.git.get_ref(ref=f"tags/{tag}", **_route(repo)), "object", dict)
            for _ in range(NESTED_TAGS):
                if _field(obj, "type", str) != "tag":
                    break
                obj = _field(self.api.git.get_tag(tag_sha=_field(obj, "sha", str), **_route(repo)), "object", dict)
            kind, sha = _field(obj, "type", str), _field(obj, "sha", str)
        if kind != "commit":
            raise GitHubError(f"{what}: points at a {kind}, not a commit")
        return _sha1(what, sha)

    def commit_tag(self, repo: str, sha: str) -> str:
        """The most specific tag naming commit `sha` (v1.2.3 over v1), or "" when none does; the commit must exist."""
        with self._errors(f"{repo} commit {sha}"):
            self.api.git.get_commit(commit_sha=sha, **_route(repo))
        tags = self._all(f"{repo} tags", self.api.repos.list_tags, **_route(repo))
        with self._errors(f"{repo} tags"):
            names = [_field(t, "name", str) for t in tags if _field(_field(t, "commit", dict), "sha", str) == sha]
        return max(names, key=lambda n: (n.count("."), len(n), n), default="")

    def release(self, repo: str, tag: str | None) -> Release:
        """The release with `tag`, or the latest one, with every asset."""
        what = f"{repo} release {tag}" if tag else f"{repo} latest release"
        with self._errors(what):
            if tag:
                rel = self.api.repos.get_release_by_tag(tag=tag, **_route(repo))
            else:
                rel = self.api.repos.get_latest_release(**_route(repo))
            release_id, found = _field(rel, "id", int), _field(rel, "tag_name", str)
        # The assets embedded in a release are not promised complete; the listing is, page by page.
        what += " assets"
        listed = self._all(what, self.api.repos.list_release_assets, release_id=release_id, **_route(repo))
        with self._errors(what):
            assets = [_asset(a) for a in listed]
        return Release(repo, found, {a.name: a for a in assets})

    def download(self, release: Release, name: str) -> bytes:
        """An asset's bytes through the API (works for private repos and GHES), checked against GitHub's digest."""
        what = f"{release.repo} release {release.tag} asset {name}"
        asset = release.assets.get(name)
        if asset is None:
            raise GitHubError(f"{release.repo} release {release.tag}: has no asset {name}")
        with self._errors(what), self._transport.limit(asset.size, f"the {asset.size} bytes GitHub lists"):
            data = self.api.repos.get_release_asset(
                asset_id=asset.id, headers_={"Accept": "application/octet-stream"}, raw_=True, **_route(release.repo)
            ).content
        if asset.digest and asset.digest.lower() != "sha256:" + hashlib.sha256(data).hexdigest():
            raise GitHubError(f"{what}: downloaded bytes do not match GitHub's digest {asset.digest}")
        return data

    def dispatch(self, repo: str, workflow: str, ref: str, inputs: dict[str, str]) -> None:
        with self._errors(f"{repo} workflow {workflow} on {ref}"):
            resp = self.api.actions.create_workflow_dispatch(
                workflow_id=workflow, ref=ref, inputs=inputs, raw_=True, **_route(repo)
            )
            # GitHub accepts a dispatch with 204 No Content; anything else (a proxy's login page) is not GitHub.
            if resp.status_code != 204:
                raise _Unexpected(f"HTTP {resp.status_code}, not 204 No Content")

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
        except _TooLarge as exc:
            raise GitHubError(f"{what}: the response is larger than {exc}; not reading on") from None
        except (_Unexpected, ValueError, TypeError) as exc:  # ValueError: not JSON; TypeError: a page is no list
            raise GitHubError(f"{what}: unexpected response from {self.url}: {_one_line(str(exc))}") from None
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


class _Unexpected(Exception):
    """An answer not shaped as GitHub documents it."""


class _TooLarge(Exception):
    pass


def _field(obj, name: str, kind: type, optional: bool = False):
    """obj[name], which must be a `kind` (or, when optional, absent or null)."""
    value = obj.get(name) if isinstance(obj, dict) else None
    if value is None and optional and isinstance(obj, dict):
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _Unexpected(f"no {name} ({kind.__name__}) in {type(obj).__name__}")
    return value


def _asset(data) -> Asset:
    id_, name, size = _field(data, "id", int), _field(data, "name", str), _field(data, "size", int)
    return Asset(id_, name, size, _field(data, "digest", str, optional=True))


class _CappedStream(httpx2.SyncByteStream):
    def __init__(self, stream: httpx2.SyncByteStream, cap: int, said: str):
        self._stream, self._cap, self._said = stream, cap, said

    def __iter__(self):
        seen = 0
        for chunk in self._stream:
            seen += len(chunk)
            if seen > self._cap:
                raise _TooLarge(self._said)
            yield chunk

    def close(self) -> None:
        self._stream.close()


class _CappedTransport(httpx2.HTTPTransport):
    """Reads at most `cap` bytes of a successful answer and MAX_RESPONSE of any other, so none exhausts memory."""

    cap, said = MAX_RESPONSE, f"{MAX_RESPONSE // 2**20} MiB"

    @contextmanager
    def limit(self, cap: int, said: str):
        self.cap, self.said = cap, said
        try:
            yield
        finally:
            del self.cap, self.said

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        response = super().handle_request(request)
        encoding = response.headers.get("content-encoding", "identity")
        if encoding != "identity":  # a compressed body could expand past the cap after it was counted
            response.close()
            raise _Unexpected(f"compressed ({encoding}) although identity was asked for")
        # A redirect or an error answer to a download is not the asset, so the asset's size does not bound it.
        cap, said = (self.cap, self.said) if response.is_success else (_CappedTransport.cap, _CappedTransport.said)
        if int(response.headers.get("content-length") or 0) > cap:
            response.close()
            raise _TooLarge(said)
        response.stream = _CappedStream(response.stream, cap, said)
        return response


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
