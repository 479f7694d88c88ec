"""Times saving 20 embedded images for one arch: scripts/save.sh, which writes registry/ itself, against one skopeo
copy at a time into a loopback registry on registry/ (sealos's saver holds a lock around each copy, so it copies one
image after another). The target: save.sh takes at most 1/3 of the one-at-a-time time.

Usage: python benchmarks/save_bench.py [IMAGES] [MIB_PER_IMAGE] [LATENCY_MS]   (default: 20 images of 4 MiB per
arch; 0 and 50 ms)

The upstream is a loopback docker-registry with htpasswd auth holding IMAGES two-arch lists built here with buildah.
Each figure is the median of 3 runs into a fresh context. Loopback has no latency, so this measures the overhead of
the step and what parallel copies gain on this machine's cores; a second pass goes through a loopback proxy that
holds each request LATENCY_MS before passing it on, as a distant registry would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from helpers import loopback_registry, wait_http  # noqa: E402

RUNS = 3
ARCH = "arm64"


def run(*cmd: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, **kw)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr[-2000:]}")
    return proc


def publish(host: str, authfile: Path, work: Path, count: int, mib: int) -> list[str]:
    env = {**os.environ, "REGISTRY_AUTH_FILE": str(authfile)}
    refs, local = [], []
    for i in range(count):
        ref = f"{host}/bench/embedded{i:02d}:v1"
        listed = f"localhost/bench-list-{secrets.token_hex(3)}"
        run("buildah", "manifest", "create", listed, env=env)
        for arch in ("amd64", "arm64"):
            ctx = work / f"img{i}-{arch}"
            ctx.mkdir()
            (ctx / "payload").write_bytes(os.urandom(mib << 20))
            (ctx / "Containerfile").write_text("FROM scratch\nCOPY payload /\n")
            local.append(f"{host}/bench/local{i:02d}:{arch}")
            run("buildah", "build", "--platform", f"linux/{arch}", "-t", local[-1], str(ctx), env=env)
            run("buildah", "manifest", "add", listed, f"containers-storage:{local[-1]}", env=env)
        run("buildah", "manifest", "push", "--all", "--tls-verify=false", listed, f"docker://{ref}", env=env)
        run("buildah", "manifest", "rm", listed, env=env)
        refs.append(ref)
    subprocess.run(["buildah", "rmi", "-f", *local], capture_output=True, check=False)
    return refs


def context(work: Path, refs: list[str]) -> Path:
    ctx = Path(tempfile.mkdtemp(dir=work, prefix="ctx-"))
    (ctx / "images" / "shim").mkdir(parents=True)
    (ctx / "images" / "shim" / "List").write_text("".join(f"{r}\n" for r in refs))
    return ctx


def save_step(ctx: Path, authfile: Path, parallel: int, host: str) -> None:
    gen = ctx.parent / "clusterimg-gen"
    if not gen.exists():
        gen.write_text(f'#!/bin/sh\nPYTHONPATH={ROOT / "generator"} exec {sys.executable} -m clusterimg "$@"\n')
        gen.chmod(0o755)
    # CIMG_PYTHON: the interpreter itself, as a runner's python3 is, not a version manager's shim in front of it.
    env = {**os.environ, "CIMG_CONTEXT": str(ctx), "CIMG_ARCH": ARCH, "CIMG_TLS_VERIFY": "false", "CIMG_GEN": str(gen),
           "CIMG_PYTHON": sys.executable, "CIMG_REGISTRY": host, "CIMG_SAVE_PARALLEL": str(parallel),
           "REGISTRY_AUTH_FILE": str(authfile)}  # fmt: skip
    run("bash", str(ROOT / "scripts" / "save.sh"), env=env)


def one_at_a_time(ctx: Path, authfile: Path, refs: list[str]) -> None:
    """What sealos's saver does: a registry on registry/, then each image copied after the one before."""
    port = 20000 + secrets.randbelow(40000)
    config = ctx.parent / f"registry-{port}.json"
    config.write_text('{"version":"0.1","log":{"level":"error","accesslog":{"disabled":true}},"storage":{"filesystem":{"rootdirectory":"%s"}},'
                      '"http":{"addr":"127.0.0.1:%d"}}' % (ctx / "registry", port))  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    server = subprocess.Popen(["docker-registry", "serve", str(config)], env=env, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/v2/", server)
        for ref in refs:
            name = ref.split("/", 1)[1]
            run("skopeo", "--override-os", "linux", "--override-arch", ARCH, "copy", "--quiet", "--authfile",
                str(authfile), "--src-tls-verify=false", "--dest-tls-verify=false", f"docker://{ref}",
                f"docker://127.0.0.1:{port}/{name}")  # fmt: skip
    finally:
        server.terminate()
        server.wait(10)


@contextlib.contextmanager
def delayed(upstream: str, latency: float):
    """A loopback TCP proxy to `upstream` that holds every chunk a client sends for `latency` seconds."""
    host, port = upstream.rsplit(":", 1)
    loop = asyncio.new_event_loop()

    async def pipe(reader, writer, delay):
        try:
            while data := await reader.read(1 << 16):
                if delay:
                    await asyncio.sleep(delay)
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def handle(client_r, client_w):
        server_r, server_w = await asyncio.open_connection(host, int(port))
        await asyncio.gather(pipe(client_r, server_w, latency), pipe(server_r, client_w, 0))

    server = loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", 0))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    mib = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    latency = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    missing = [t for t in ("buildah", "skopeo", "docker-registry", "htpasswd") if not shutil.which(t)]
    if missing:
        raise SystemExit(f"needs {', '.join(missing)} on PATH")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        password = secrets.token_hex(12)
        (work / "upstream").mkdir()
        with loopback_registry(work / "upstream", "bench", password) as host:
            authfile = work / "auth.json"
            run("skopeo", "login", "--authfile", str(authfile), "--tls-verify=false", "--username", "bench",
                "--password-stdin", host, input=password)  # fmt: skip
            refs = publish(host, authfile, work, count, mib)
            print(f"saving {count} two-arch images of {mib} MiB per arch for linux/{ARCH} on loopback, "
                  f"median of {RUNS}, {os.cpu_count()} cores")  # fmt: skip
            for ms in (0, latency):
                with delayed(host, ms / 1000) if ms else contextlib.nullcontext(host) as proxy:
                    via = [r.replace(host, proxy, 1) for r in refs]
                    run("skopeo", "login", "--authfile", str(authfile), "--tls-verify=false", "--username", "bench",
                        "--password-stdin", proxy, input=password)  # fmt: skip
                    rows = {f"save.sh ({n} at a time)": lambda n=n: save_step(context(work, via), authfile, n, proxy)
                            for n in (4, 8, 16)}
                    rows["skopeo copy, one at a time"] = lambda: one_at_a_time(context(work, via), authfile, via)
                    results = {name: statistics.median(timed(fn) for _ in range(RUNS)) for name, fn in rows.items()}
                base = results["skopeo copy, one at a time"]
                print(f" {ms} ms added to each request:")
                for name, took in results.items():
                    print(f"  {name:<28} {took:6.2f} s  ({took / base:4.2f} of the one-at-a-time time)")


if __name__ == "__main__":
    main()
