"""Saves images into registry/ as distribution's filesystem storage lays them out, for one platform only: manifests
and blobs fetched over the registry API in parallel, each checked against its sha256, shared blobs fetched once.
Standard library only: the build leg runs it with the runner's python3, without installing anything.

    python3 -m clusterimg.save ROOT ARCH LIST OWN-REGISTRY < AUTH-FILE

LIST has one `SOURCE NAME` line per image: SOURCE is docker://REF or dir:PATH (a `skopeo copy` to dir:), NAME where
it goes in ROOT/registry. The auth file (containers-auth.json) comes on stdin, so no credential is in argv or env.
Settings come from CIMG_SAVE_PARALLEL, CIMG_RETRIES, CIMG_RETRY_DELAY, CIMG_NET_TIMEOUT and CIMG_TLS_VERIFY, which
applies to OWN-REGISTRY only; every other registry's TLS is verified (SSL_CERT_FILE adds CAs). Prints each saved
`image@digest`; a failure prints one `error:` line naming the image and exits 1.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import ssl
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import defaults
from .registry import host_of

V2 = "registry/docker/registry/v2"
LISTS = ("application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.oci.image.index.v1+json")
IMAGES = ("application/vnd.docker.distribution.manifest.v2+json", "application/vnd.oci.image.manifest.v1+json")
CHUNK = 1 << 20


class Final(Exception):
    """An answer that asking again cannot change."""


class Transient(Exception):
    pass


@dataclass(frozen=True)
class Settings:
    arch: str
    own: str
    tls_verify: bool
    parallel: int
    retries: int
    timeout: int


def retry(settings: Settings, what: str, fn):
    for attempt in range(1, settings.retries + 1):
        try:
            return fn()
        except Transient as exc:
            if attempt == settings.retries:
                raise Transient(f"{exc} (after {attempt} attempt(s))") from None
            delay = defaults.retry_delay(attempt - 1)
            print(f"attempt {attempt}/{settings.retries} failed: {what}: {exc}; retrying in {delay:g}s", file=sys.stderr)
            time.sleep(delay)


class Registry:
    """One registry host: its scheme, found by a first /v2/ request, and its credentials and tokens."""

    def __init__(self, host: str, settings: Settings, auths: dict):
        self.host, self.settings = host, settings
        self.endpoint = "registry-1.docker.io" if host == "docker.io" else host
        self.verify = settings.tls_verify or host != settings.own
        self.context = ssl.create_default_context()
        if not self.verify:
            self.context.check_hostname, self.context.verify_mode = False, ssl.CERT_NONE
        self.opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=self.context))
        self.auths, self.scheme, self.challenge = auths, "", ""
        self.tokens: dict[str, str] = {}
        self.lock = threading.Lock()

    def _open(self, url: str, headers: dict, unredirected: dict):
        request = urllib.request.Request(url, headers=headers)
        for key, value in unredirected.items():
            request.add_unredirected_header(key, value)  # never sent on to a blob store the registry redirects to
        try:
            return self.opener.open(request, timeout=self.settings.timeout)
        except urllib.error.HTTPError as exc:
            return exc
        except ssl.SSLError as exc:
            raise Final(f"TLS with {self.host} failed: {exc}") from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ssl.SSLError):
                raise Final(f"TLS with {self.host} failed: {exc.reason}") from None
            raise Transient(f"{url}: {exc.reason}") from None
        except OSError as exc:
            raise Transient(f"{url}: {exc}") from None

    def _ping(self) -> None:
        """Finds the scheme and how the registry wants to be asked, once. Without TLS verification an HTTPS
        registry is still used; plain HTTP only when it does not speak TLS, as skopeo does."""
        with self.lock:
            if self.scheme:
                return
            for scheme in ("https", "http") if not self.verify else ("https",):
                try:
                    answer = self._open(f"{scheme}://{self.endpoint}/v2/", {}, {})
                except Final:
                    if scheme == "https" and not self.verify:
                        continue
                    raise
                with answer:
                    self.challenge = answer.headers.get("WWW-Authenticate", "") if answer.status == 401 else ""
                self.scheme = scheme
                return

    def _credentials(self, path: str) -> str:
        """user:password, base64, from the auth file: the longest host/namespace key that matches, as containers do."""
        full = f"{self.host}/{path}"
        for key in sorted(self.auths, key=len, reverse=True):
            if full == key or full.startswith(key + "/"):
                entry = self.auths[key]
                if entry.get("auth"):
                    return entry["auth"]
                if entry.get("username"):
                    return base64.b64encode(f"{entry['username']}:{entry.get('password', '')}".encode()).decode()
        return ""

    def _authorization(self, path: str, fresh: bool = False, actions: str = "pull") -> str:
        if not self.challenge:
            return ""
        kind, _, params = self.challenge.partition(" ")
        basic = self._credentials(path)
        if kind.lower() == "basic":
            return f"Basic {basic}" if basic else ""
        scope = f"repository:{path}:{actions}"
        with self.lock:
            if scope in self.tokens and not fresh:
                return self.tokens[scope]
        fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
        query = urllib.parse.urlencode({"service": fields.get("service", ""), "scope": scope})
        headers = {"Authorization": f"Basic {basic}"} if basic else {}
        answer = self._open(f"{fields.get('realm', '')}?{query}", {}, headers)
        with answer:
            if answer.status != 200:
                raise Final(f"{self.host} refused a token for {path}: HTTP {answer.status}")
            body = json.load(answer)
        token = f"Bearer {body.get('token') or body.get('access_token', '')}"
        with self.lock:
            self.tokens[scope] = token
        return token

    def get(self, path: str, kind: str, reference: str, accept: str = ""):
        """The open answer to GET /v2/PATH/KIND/REFERENCE; a missing image or refused access is Final."""
        self._ping()
        url = f"{self.scheme}://{self.endpoint}/v2/{path}/{kind}/{reference}"
        headers = {"Accept": accept} if accept else {}
        for fresh in (False, True):  # a token may expire during a long save
            auth = self._authorization(path, fresh)
            answer = self._open(url, headers, {"Authorization": auth} if auth else {})
            if answer.status != 401:
                break
            answer.close()
        if answer.status == 200:
            return answer
        answer.close()
        if answer.status in (401, 403):
            raise Final(f"access to {self.host}/{path} denied: HTTP {answer.status}")
        if answer.status == 404:
            raise Final(f"not found: {self.host}/{path} has no {reference}")
        raise Transient(f"{url}: HTTP {answer.status}")


class Store:
    """ROOT/registry as distribution stores it: blobs by digest, and per repository the links that name them."""

    def __init__(self, root: Path):
        self.v2 = root / V2
        self.fetching: dict[str, Future] = {}
        self.lock = threading.Lock()

    def blob_path(self, digest: str) -> Path:
        algorithm, _, hexa = digest.partition(":")
        return self.v2 / "blobs" / algorithm / hexa[:2] / hexa / "data"

    def has(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def write_blob(self, digest: str, chunks) -> None:
        """Writes the blob from `chunks`, in place only when its sha256 is `digest`."""
        path = self.blob_path(digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        sha = hashlib.sha256()
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".part-", delete=False) as out:
            try:
                for chunk in chunks:
                    sha.update(chunk)
                    out.write(chunk)
            except BaseException:
                os.unlink(out.name)
                raise
        if f"sha256:{sha.hexdigest()}" != digest:
            os.unlink(out.name)
            raise Transient(f"{digest}: the bytes received have sha256:{sha.hexdigest()}")
        os.chmod(out.name, 0o644)
        os.replace(out.name, path)

    def link(self, name: str, manifest: str, blobs: list[str]) -> None:
        """Names the manifest and its blobs in repository `name`, tagged unless `name` is path@digest."""
        path, at, _ = name.partition("@")
        path, _, tag = (path, "", "") if at else path.rpartition(":")
        repo = self.v2 / "repositories" / path
        links = {repo / "_layers" / d.replace(":", "/"): d for d in blobs}
        links[repo / "_manifests/revisions" / manifest.replace(":", "/")] = manifest
        if tag:  # the tag's current link last: a reader never finds it before what it names
            links[repo / "_manifests/tags" / tag / "index" / manifest.replace(":", "/")] = manifest
            links[repo / "_manifests/tags" / tag / "current"] = manifest
        for directory, digest in links.items():
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "link").write_text(digest)


def _chunks(answer, deadline: float):
    with answer:
        while True:
            try:
                chunk = answer.read(CHUNK)
            except (OSError, http.client.HTTPException) as exc:
                raise Transient(f"{answer.url}: {exc or type(exc).__name__}") from None
            if not chunk:
                return
            if time.monotonic() > deadline:
                raise Transient(f"{answer.url}: no complete answer within CIMG_NET_TIMEOUT")
            yield chunk


class Saver:
    def __init__(self, root: Path, settings: Settings, auths: dict):
        self.store, self.settings, self.auths = Store(root), settings, auths
        self.registries: dict[str, Registry] = {}
        self.lock = threading.Lock()
        self.blobs = ThreadPoolExecutor(settings.parallel)
        self.failed = threading.Event()

    def registry(self, host: str) -> Registry:
        with self.lock:
            if host not in self.registries:
                self.registries[host] = Registry(host, self.settings, self.auths)
            return self.registries[host]

    def save(self, source: str, name: str) -> str:
        """Saves one image; returns `image@digest` of the manifest stored."""
        if self.failed.is_set():
            raise Final("not tried: an earlier image failed")
        if source.startswith("docker://"):
            what = source.removeprefix("docker://")
            fetch = Remote(self, what)
        else:
            what = name
            fetch = Local(Path(source.removeprefix("dir:")))
        digest, manifest = fetch.manifest(self.settings.arch)
        doc = json.loads(manifest)
        config = fetch.blob_bytes(doc["config"]["digest"])
        got = json.loads(config)
        platform = f"{got.get('os')}/{got.get('architecture')}"
        if platform != f"linux/{self.settings.arch}":
            raise Final(f"is a single {platform} image, not linux/{self.settings.arch}")
        self._write(doc["config"]["digest"], lambda: iter([config]))
        layers = [layer["digest"] for layer in doc.get("layers", [])]
        for future in [self._fetch(d, fetch) for d in layers]:
            future.result()
        self._write(digest, lambda: iter([manifest]))
        self.store.link(name, digest, [doc["config"]["digest"], *layers])
        return f"{what.rpartition('@')[0] if '@' in what else what}@{digest}"

    def _fetch(self, digest: str, fetch) -> Future:
        """One download per blob, however many images share it."""
        with self.store.lock:
            if digest not in self.store.fetching:
                self.store.fetching[digest] = self.blobs.submit(self._write, digest, lambda: fetch.blob(digest))
            return self.store.fetching[digest]

    def _write(self, digest: str, chunks) -> None:
        if not self.store.has(digest):
            retry(self.settings, digest, lambda: self.store.write_blob(digest, chunks()))


class Remote:
    def __init__(self, saver: Saver, ref: str):
        self.saver, self.settings = saver, saver.settings
        host = host_of(ref)
        rest = ref.removeprefix(host + "/") if ref.startswith(host + "/") else ref
        rest, _, digest = rest.partition("@")
        path, colon, tag = rest.rpartition(":") if ":" in rest.rsplit("/", 1)[-1] else (rest, "", "")
        self.registry, self.path, self.reference = saver.registry(host), path, digest or tag or "latest"

    def _manifest(self, reference: str) -> tuple[str, bytes, str]:
        def once():
            deadline = time.monotonic() + self.settings.timeout
            answer = self.registry.get(self.path, "manifests", reference, ", ".join(LISTS + IMAGES))
            kind = answer.headers.get("Content-Type", "").split(";")[0]
            body = b"".join(_chunks(answer, deadline))
            return kind, body

        kind, body = retry(self.settings, f"{self.path}:{reference}", once)
        digest = f"sha256:{hashlib.sha256(body).hexdigest()}"
        if reference.startswith("sha256:") and digest != reference:
            raise Final(f"the registry answered {reference} with a manifest of {digest}")
        return digest, body, json.loads(body).get("mediaType") or kind

    def manifest(self, arch: str) -> tuple[str, bytes]:
        digest, body, kind = self._manifest(self.reference)
        if kind in LISTS:
            entries = [m for m in json.loads(body).get("manifests", [])
                       if m.get("platform", {}).get("os") == "linux"
                       and m.get("platform", {}).get("architecture") == arch]  # fmt: skip
            if not entries:
                raise Final(f"has no linux/{arch} image")
            # arm64 lists may carry variants; v8 (or none) is the one a 64-bit arm machine runs.
            entries.sort(key=lambda m: m["platform"].get("variant", "") not in ("", "v8"))
            digest, body, kind = self._manifest(entries[0]["digest"])
        if kind not in IMAGES:
            raise Final(f"has a manifest of type '{kind}', which is not saved (expected {' or '.join(IMAGES)})")
        return digest, body

    def blob(self, digest: str):
        deadline = time.monotonic() + self.settings.timeout
        return _chunks(self.registry.get(self.path, "blobs", digest), deadline)

    def blob_bytes(self, digest: str) -> bytes:
        def once():
            data = b"".join(self.blob(digest))
            if f"sha256:{hashlib.sha256(data).hexdigest()}" != digest:
                raise Transient(f"{digest}: the bytes received do not match")
            return data

        return retry(self.settings, digest, once)


class Local:
    """A `skopeo copy … dir:PATH` of one image: manifest.json and a file per blob, named by its hex digest."""

    def __init__(self, path: Path):
        self.path = path

    def manifest(self, arch: str) -> tuple[str, bytes]:
        body = (self.path / "manifest.json").read_bytes()
        return f"sha256:{hashlib.sha256(body).hexdigest()}", body

    def blob(self, digest: str):
        return iter([self.blob_bytes(digest)])

    def blob_bytes(self, digest: str) -> bytes:
        return (self.path / digest.partition(":")[2]).read_bytes()


def auths_from(text: str) -> dict:
    """host[/namespace] → entry, from a containers-auth.json or docker config.json; keys as docker normalises them."""
    out = {}
    for key, entry in (json.loads(text).get("auths") or {}).items() if text.strip() else ():
        key = re.sub(r"^https?://", "", key).rstrip("/")
        if key.startswith(("index.docker.io", "registry-1.docker.io")):
            key = "docker.io"
        out[key] = entry
    return out


def settings_from_env(arch: str, own: str) -> Settings:
    """The scripts' settings, which lib.sh has already checked."""
    env = os.environ.get
    return Settings(arch, own, env("CIMG_TLS_VERIFY", defaults.text(defaults.TLS_VERIFY)) != "false",
                    int(env("CIMG_SAVE_PARALLEL", str(defaults.DATA["save_parallel"]))), int(env("CIMG_RETRIES", str(defaults.RETRIES))),
                    int(env("CIMG_NET_TIMEOUT", "300")))  # fmt: skip


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print("usage: python3 -m clusterimg.save ROOT ARCH LIST OWN-REGISTRY < AUTH-FILE", file=sys.stderr)
        return 2
    root, arch, listing, own = Path(argv[0]), argv[1], Path(argv[2]), argv[3]
    settings = settings_from_env(arch, own)
    saver = Saver(root, settings, auths_from(sys.stdin.read()))
    lines = [line.split(" ", 1) for line in listing.read_text().splitlines() if line.strip()]

    def one(source: str, name: str) -> tuple[str, str]:
        what = source.removeprefix("docker://") if source.startswith("docker://") else name
        try:
            return saver.save(source, name), ""
        except Final as exc:
            problem = str(exc) if str(exc).startswith(("has ", "is ", "not found")) else f"could not be saved: {exc}"
        except (Transient, OSError, ValueError, KeyError, TypeError) as exc:
            problem = f"could not be saved: {exc}"
        saver.failed.set()
        return "", f"{what} {problem}"

    with ThreadPoolExecutor(settings.parallel) as pool:
        results = list(pool.map(lambda line: one(*line), lines))
    saver.blobs.shutdown()
    errors = [e for _, e in results if e and not e.endswith("not tried: an earlier image failed")]
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    if not errors:
        print("".join(sorted(f"{saved}\n" for saved, _ in results)), end="")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
