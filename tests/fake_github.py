"""A loopback GitHub: just the REST endpoints `lock`, `dispatch`, the release workflow and the generated workflows use,
on 127.0.0.1, in a thread.

Responses are built from the JSON in github_fixtures/, shaped like GitHub's documented responses, with synthetic
values. Asset downloads go the documented way: the asset endpoint with `Accept: application/octet-stream`
answers 302 to the asset's browser_download_url, which points back at this server.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from string import Template
from urllib.parse import parse_qs, unquote, urlsplit

FIXTURES = Path(__file__).parent / "github_fixtures"


class Raw(str):
    """A value already in JSON form, for a fixture slot outside quotes."""


def fixture(file: str, /, **values) -> dict | list:
    def render(v):
        if isinstance(v, Raw):
            return str(v)
        return json.dumps(v)[1:-1] if isinstance(v, str) else json.dumps(v)

    text = Template((FIXTURES / f"{file}.json").read_text()).substitute({k: render(v) for k, v in values.items()})
    return json.loads(text)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class Failure:
    status: int
    fixture: str
    headers: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)
    prefix: str = ""  # only paths starting with this fail


@dataclass
class Answer:
    """A reply GitHub would never give, for paths starting with `prefix`: a broken body, or `stream` bytes of it."""

    prefix: str
    status: int = 200
    body: bytes = b""
    ctype: str | None = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    stream: int = 0  # when set, this many bytes without a Content-Length, as a runaway server sends them


class FakeGitHub:
    def __init__(self):
        self.tags: dict[tuple[str, str], tuple[str, str | None]] = {}  # (repo, tag) → (commit, tag object or None)
        self.releases: dict[tuple[str, str], dict[str, bytes]] = {}  # (repo, tag) → {asset name: bytes}
        self.latest: dict[str, str] = {}  # repo → tag of its latest release
        self.digests: dict[tuple[str, str, str], str | None] = {}  # (repo, tag, name) → digest override
        self.workflows: dict[tuple[str, str], set[str]] = {}  # (repo, file) → declared dispatch inputs
        self.runs: dict[tuple[str, str], list[dict]] = {}  # (repo, file) → its runs, newest first
        self.branches: set[str] = {"main"}  # what a pull request may target
        self.pulls: list[tuple[str, str, str]] = []  # (repo, head, base) of each open pull request
        self.created: dict[tuple[str, str], dict] = {}  # (repo, tag) → the body of each release created here
        self.roles: dict[str, str] = {}  # login → admin, maintain, write, triage or read; anyone else may read
        self.comments: list[dict] = []  # each comment posted: {"repo", "issue", "body"}
        self.reactions: list[tuple[str, int, str]] = []  # (repo, comment id, content) of each reaction
        self.token: str | None = None  # when set, any other Authorization is a 401
        self.failure: Failure | None = None
        self.answers: list[Answer] = []
        self.page_size = 2  # small pages, so listings take several requests
        self.requests: list[Request] = []
        self._ids: dict[tuple, int] = {}
        self._keys: dict[int, tuple] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> FakeGitHub:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- test set-up ---------------------------------------------------------------------------------------------

    def tag(self, repo: str, tag: str, commit: str, annotated: str | None = None) -> None:
        """A lightweight tag, or (with `annotated`, the tag object's sha) an annotated one."""
        self.tags[(repo, tag)] = (commit, annotated)

    def release(self, repo: str, tag: str, assets: dict[str, bytes], latest: bool = False) -> None:
        self.releases[(repo, tag)] = assets
        if latest:
            self.latest[repo] = tag

    def fail(self, status: int, fixture_name: str, prefix: str = "", **headers: str) -> None:
        headers = {k.replace("_", "-"): v for k, v in headers.items()}
        self.failure = Failure(status, fixture_name, headers, prefix=prefix)

    def answer(self, prefix: str, status: int = 200, body: bytes | str | dict = b"", **kw) -> None:
        """Reply to paths under `prefix` with exactly this; a dict body is sent as JSON."""
        if isinstance(body, dict):
            body = json.dumps(body)
        self.answers.append(Answer(prefix, status, body.encode() if isinstance(body, str) else body, **kw))

    # --- helpers ---------------------------------------------------------------------------------------------------

    def id_of(self, *key) -> int:
        if key not in self._ids:
            self._ids[key] = 1000 + len(self._ids)
            self._keys[self._ids[key]] = key
        return self._ids[key]

    def key_of(self, kind: str, id_: str) -> tuple:
        key = self._keys[int(id_)]
        if key[0] != kind:
            raise KeyError(id_)
        return key[1:]

    def asset_json(self, repo: str, tag: str, name: str) -> dict:
        data = self.releases[(repo, tag)][name]
        digest = self.digests.get((repo, tag, name), "sha256:" + hashlib.sha256(data).hexdigest())
        return fixture(
            "release_asset", api=self.url, web=self.url, repo=repo, tag=tag, name=name,
            id=self.id_of("asset", repo, tag, name), size=len(data), digest=Raw(json.dumps(digest)),
        )

    def release_json(self, repo: str, tag: str) -> dict:
        rel = fixture("release", api=self.url, web=self.url, repo=repo, tag=tag, id=self.id_of("release", repo, tag))
        rel["assets"] = [self.asset_json(repo, tag, n) for n in self.releases[(repo, tag)]]
        return rel


def _handler(gh: FakeGitHub):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

        def do_GET(self):
            self._serve("GET")

        def do_POST(self):
            self._serve("POST")

        def do_PUT(self):
            self._serve("PUT")

        def do_PATCH(self):
            self._serve("PATCH")

        def _serve(self, method: str) -> None:
            url = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            req = Request(
                method, unquote(url.path), {k: v[-1] for k, v in parse_qs(url.query).items()},
                {k.lower(): v for k, v in self.headers.items()}, body,
            )
            gh.requests.append(req)
            auth = req.headers.get("authorization")
            if auth is not None and gh.token is not None and auth != f"Bearer {gh.token}":
                return self._json(401, fixture("error_401"))
            answer = next((a for a in gh.answers if req.path.startswith(a.prefix)), None)
            if answer:
                return self._answer(answer)
            if gh.failure and req.path.startswith(gh.failure.prefix):
                f = gh.failure
                return self._json(f.status, fixture(f.fixture, **f.values), f.headers)
            try:
                self.route(req)
            except (KeyError, StopIteration, ValueError):
                self._json(404, fixture("error_404"))
            except Exception as exc:  # a bug in this fake: say so instead of hanging up
                self._json(500, {"message": f"fake_github: {type(exc).__name__}: {exc}"})

        def _json(self, status: int, data, headers: dict[str, str] | None = None) -> None:
            self._send(status, json.dumps(data, indent=2).encode(), "application/json; charset=utf-8", headers)

        def _send(self, status: int, body: bytes, ctype: str | None, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            if ctype:
                self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-GitHub-Api-Version-Selected", "2022-11-28")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _answer(self, a: Answer) -> None:
            if not a.stream:
                return self._send(a.status, a.body, a.ctype, a.headers)
            self.send_response(a.status)
            if a.ctype:
                self.send_header("Content-Type", a.ctype)
            self.end_headers()
            chunk = b" " * 2**20
            try:
                for sent in range(0, a.stream, len(chunk)):
                    self.wfile.write(chunk[: a.stream - sent])
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped reading, as it should
            self.close_connection = True

        def _page(self, req: Request, items: list) -> None:
            size = min(int(req.query.get("per_page", 30)), gh.page_size)
            page = int(req.query.get("page", 1))
            self._json(200, items[(page - 1) * size : page * size])

        def route(self, req: Request) -> None:  # noqa: C901 - one flat table of endpoints
            parts = req.path.strip("/").split("/")
            if parts[0] != "repos":
                # browser_download_url: /<owner>/<repo>/releases/download/<tag>/<name>
                owner, name, _, _, tag, asset = parts
                return self._send(200, gh.releases[(f"{owner}/{name}", tag)][asset], "application/octet-stream")
            repo, rest = f"{parts[1]}/{parts[2]}", parts[3:]
            values = {"api": gh.url, "web": gh.url, "repo": repo}
            if req.method == "POST" and rest[:2] == ["actions", "workflows"] and rest[3:] == ["dispatches"]:
                if req.headers.get("authorization") is None:
                    return self._json(401, {"message": "Requires authentication", "status": "401"})
                declared = gh.workflows[(repo, rest[2])]
                extra = sorted(set(req.json().get("inputs", {})) - declared)
                if extra:
                    return self._json(422, fixture("error_422_inputs", inputs=json.dumps(extra)))
                return self._send(204, b"", None)
            if req.method == "GET" and rest[:2] == ["actions", "workflows"] and rest[3:] == ["runs"]:
                wanted = {k: req.query[k] for k in ("branch", "event", "status") if k in req.query}
                runs = [r for r in gh.runs.get((repo, rest[2]), []) if all(r.get(k) == v for k, v in wanted.items())]
                per_page = int(req.query.get("per_page", 30))
                return self._json(200, {"total_count": len(runs), "workflow_runs": runs[:per_page]})
            if req.method == "POST" and rest == ["pulls"]:
                if req.headers.get("authorization") is None:
                    return self._json(401, {"message": "Requires authentication", "status": "401"})
                try:
                    head, base = req.json()["head"], req.json()["base"]
                except ValueError:
                    return self._json(400, fixture("error_400_json"))
                if base not in gh.branches:
                    return self._json(422, fixture("error_422_pull_invalid", field="base"))
                if (repo, head, base) in gh.pulls:
                    return self._json(422, fixture("error_422_pull_exists", head=f"{parts[1]}:{head}"))
                gh.pulls.append((repo, head, base))
                return self._json(201, {"number": len(gh.pulls), "head": {"ref": head}, "state": "open"})
            if rest[:1] in (["collaborators"], ["issues"]) and req.headers.get("authorization") is None:
                return self._json(401, {"message": "Requires authentication", "status": "401"})
            if req.method == "GET" and rest[:1] == ["collaborators"] and rest[2:] == ["permission"]:
                role = gh.roles.get(rest[1], "read")
                permission = {"maintain": "write", "triage": "read"}.get(role, role)
                order = ["read", "triage", "write", "maintain", "admin"]
                flags = {k: order.index(role) >= order.index(r) for k, r in (
                    ("pull", "read"), ("triage", "triage"), ("push", "write"), ("maintain", "maintain"), ("admin", "admin"))}
                return self._json(200, fixture(
                    "collaborator_permission", **values, login=rest[1], role=role, permission=permission,
                    id=Raw(str(gh.id_of("user", rest[1]))), permissions=Raw(json.dumps(flags)),
                ))
            if req.method == "POST" and rest[:2] == ["issues", "comments"] and rest[3:] == ["reactions"]:
                content = req.json().get("content")
                if content not in ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"):
                    return self._json(422, fixture("error_422_reaction"))
                gh.reactions.append((repo, int(rest[2]), content))
                return self._json(201, fixture("reaction", **values, content=content,
                                               id=Raw(str(gh.id_of("reaction", repo, rest[2], content)))))
            if req.method == "POST" and rest[:1] == ["issues"] and rest[2:] == ["comments"]:
                body = req.json()["body"]
                gh.comments.append({"repo": repo, "issue": int(rest[1]), "body": body})
                return self._json(201, fixture("issue_comment", **values, body=body, number=Raw(str(int(rest[1]))),
                                               id=Raw(str(gh.id_of("comment", len(gh.comments))))))
            if req.method == "PUT" and rest[:2] == ["actions", "workflows"] and rest[3:] == ["enable"]:
                if req.headers.get("authorization") is None:
                    return self._json(401, {"message": "Requires authentication", "status": "401"})
                return self._send(204, b"", None)
            if req.method == "POST" and rest == ["releases"]:
                if req.headers.get("authorization") is None:
                    return self._json(401, {"message": "Requires authentication", "status": "401"})
                body = req.json()
                tag = body["tag_name"]
                if (repo, tag) in gh.created or (repo, tag) in gh.releases:
                    return self._json(422, fixture("error_422_release_exists"))
                gh.created[(repo, tag)] = body
                gh.releases[(repo, tag)] = {}
                return self._json(201, gh.release_json(repo, tag))
            if req.method == "PATCH" and rest[:3] == ["git", "refs", "tags"]:
                if req.headers.get("authorization") is None:
                    return self._json(401, {"message": "Requires authentication", "status": "401"})
                tag, sha = "/".join(rest[3:]), req.json()["sha"]
                if (repo, tag) not in gh.tags:
                    return self._json(422, fixture("error_422_ref_missing"))
                gh.tags[(repo, tag)] = (sha, None)
                return self._json(200, fixture(
                    "git_ref", **values, tag=tag, object_type="commit", object_kind="commits", object_sha=sha
                ))
            if req.method == "POST" and rest == ["git", "refs"]:
                if req.headers.get("authorization") is None:
                    return self._json(401, {"message": "Requires authentication", "status": "401"})
                ref, sha = req.json()["ref"], req.json()["sha"]
                tag = ref.removeprefix("refs/tags/")
                if tag == ref:
                    raise KeyError(ref)  # only tags here
                if (repo, tag) in gh.tags:
                    return self._json(422, fixture("error_422_ref_exists"))
                gh.tags[(repo, tag)] = (sha, None)
                return self._json(201, fixture(
                    "git_ref", **values, tag=tag, object_type="commit", object_kind="commits", object_sha=sha
                ))
            if rest[:3] == ["git", "ref", "tags"]:
                tag = "/".join(rest[3:])
                commit, obj = gh.tags[(repo, tag)]
                kind = ("tag", "tags", obj) if obj else ("commit", "commits", commit)
                return self._json(200, fixture(
                    "git_ref", **values, tag=tag, object_type=kind[0], object_kind=kind[1], object_sha=kind[2]
                ))
            if rest[:2] == ["git", "tags"]:
                tag, commit = next((t, c) for (r, t), (c, o) in gh.tags.items() if r == repo and o == rest[2])
                return self._json(200, fixture("git_tag", **values, tag=tag, tag_sha=rest[2], sha=commit))
            if rest[:2] == ["git", "commits"]:
                if not any(r == repo and c == rest[2] for (r, _), (c, _) in gh.tags.items()):
                    raise KeyError(rest[2])
                return self._json(200, fixture("git_commit", **values, sha=rest[2]))
            if rest == ["tags"]:
                tags = sorted((t, c) for (r, t), (c, _) in gh.tags.items() if r == repo)
                return self._page(req, [fixture("tag", **values, tag=t, sha=c) for t, c in tags])
            if rest == ["releases", "latest"]:
                return self._json(200, gh.release_json(repo, gh.latest[repo]))
            if rest[:2] == ["releases", "tags"]:
                tag = "/".join(rest[2:])
                gh.releases[(repo, tag)]  # a KeyError is GitHub's 404
                return self._json(200, gh.release_json(repo, tag))
            if rest[:2] == ["releases", "assets"]:
                r, tag, name = gh.key_of("asset", rest[2])
                if "application/octet-stream" in req.headers.get("accept", ""):
                    # GitHub redirects the API download to storage; this redirect stays on the loopback server.
                    location = gh.asset_json(r, tag, name)["browser_download_url"]
                    return self._send(302, b"", None, {"Location": location})
                return self._json(200, gh.asset_json(r, tag, name))
            if rest[0] == "releases" and rest[2:] == ["assets"]:
                r, tag = gh.key_of("release", rest[1])
                return self._page(req, gh.release_json(r, tag)["assets"])
            raise KeyError(req.path)

    return Handler
