"""Build, push and fan in through the local runner, against a real registry."""

import contextlib
import hashlib
import http.client
import http.server
import json
import os
import shlex
import shutil
import socket
import subprocess
import threading
import time

import pytest

from clusterimg import runner
from clusterimg.errors import StepFailed
from clusterimg.paths import scripts_dir
from helpers import image_file, loopback_registry

pytestmark = pytest.mark.e2e


def publish(context, image, arches):
    for arch in arches:
        runner.build(context, f"{image}:v1", arch, push=True, tls_verify=False, builder="buildah")
    return runner.manifest(f"{image}:v1", arches, tls_verify=False)


def platforms(raw: bytes) -> list[str]:
    return sorted(f"{m['platform']['os']}/{m['platform']['architecture']}" for m in json.loads(raw)["manifests"])


def test_two_arch_build_push_and_fan_in_publishes_exactly_amd64_and_arm64(kubefile, image, creds):
    out = publish(kubefile, image, ["amd64", "arm64"])

    raw = creds.raw(f"{image}:v1")
    assert out == {"image": f"{image}:v1", "digest": "sha256:" + hashlib.sha256(raw).hexdigest()}
    assert platforms(raw) == ["linux/amd64", "linux/arm64"]
    for entry in json.loads(raw)["manifests"]:
        assert creds.config(f"{image}@{entry['digest']}")["architecture"] == entry["platform"]["architecture"]
    for arch in ("amd64", "arm64"):
        assert creds.config(f"{image}:v1-{arch}")["architecture"] == arch


def test_password_never_reaches_argv_output_or_summary(
    kubefile, image, creds, fakes, on_path, tmp_path, monkeypatch, capfd
):
    argv_log = tmp_path / "argv.log"
    monkeypatch.setenv("ARGV_LOG", str(argv_log))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "auth.json"))
    on_path(fakes / "argv_log")

    outputs = [runner.build(kubefile, f"{image}:v1", "amd64", push=True, tls_verify=False, builder="buildah")]
    outputs.append(runner.manifest(f"{image}:v1", ["amd64"], tls_verify=False))

    calls = [shlex.split(line) for line in argv_log.read_text().splitlines()]
    [login] = [c for c in calls if c[:2] == ["buildah", "login"]]  # later steps reuse the stored login
    assert "--password-stdin" in login
    assert any(c[:2] == ["buildah", "push"] for c in calls) and any(c[:2] == ["skopeo", "inspect"] for c in calls)
    captured = capfd.readouterr()
    for text in (argv_log.read_text(), captured.out, captured.err, (tmp_path / "summary.md").read_text(), str(outputs)):
        assert creds.password not in text


def test_fan_in_naming_an_unbuilt_arch_fails_and_leaves_the_published_list_untouched(kubefile, image, creds):
    publish(kubefile, image, ["amd64"])
    before = creds.raw(f"{image}:v1")

    with pytest.raises(StepFailed, match=rf"not published: {image}:v1 left untouched; arm64: {image}:v1-arm64 is not in"):
        runner.manifest(f"{image}:v1", ["amd64", "arm64"], tls_verify=False)

    assert creds.raw(f"{image}:v1") == before


def test_fan_in_refuses_an_arch_tag_that_holds_another_arch(kubefile, image, creds):
    runner.build(kubefile, f"{image}:v1", "arm64", push=True, tls_verify=False, builder="buildah")
    creds.skopeo("copy", f"docker://{image}:v1-arm64", f"docker://{image}:v1-amd64")

    with pytest.raises(StepFailed, match=r"are really linux/arm64; .* left untouched"):
        runner.manifest(f"{image}:v1", ["amd64", "arm64"], tls_verify=False)

    assert not creds.has(f"{image}:v1")


def test_push_to_a_dead_registry_fails_within_bounded_time_with_a_clear_message(kubefile, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the push: nothing listens there
    image = f"127.0.0.1:{port}/e2e/dead"
    monkeypatch.setenv("CIMG_RETRY_DELAY", "1")

    start = time.monotonic()
    try:
        with pytest.raises(StepFailed, match=rf"push of {image}:v1-amd64 to 127.0.0.1:{port} failed after 3 attempt"):
            runner.build(kubefile, f"{image}:v1", "amd64", push=True, tls_verify=False, retries=3, builder="buildah")
    finally:
        subprocess.run(["buildah", "rmi", "-f", f"{image}:v1-amd64"], capture_output=True, check=False)
    assert time.monotonic() - start < 15


@pytest.mark.parametrize("reader", ["skopeo", "buildah when skopeo is missing"])
def test_image_built_for_the_wrong_arch_is_refused_before_push(kubefile, image, creds, fakes, on_path, hide, reader):
    on_path(fakes / "platform_swap")

    tools = hide("skopeo") if reader != "skopeo" else contextlib.nullcontext()
    with tools, pytest.raises(StepFailed, match=r"built for 'arm64', not 'amd64'; removed it before any push"):
        runner.build(kubefile, f"{image}:v1", "amd64", push=True, tls_verify=False, builder="buildah")

    assert not creds.has(f"{image}:v1-amd64")
    local = subprocess.run(["buildah", "inspect", "--type", "image", f"{image}:v1-amd64"], capture_output=True)
    assert local.returncode != 0


def test_sealos_path_with_recording_double_delegating_to_buildah(
    kubefile, image, fakes, on_path, tmp_path, monkeypatch
):
    argv_log = tmp_path / "sealos.argv"
    monkeypatch.setenv("SEALOS_ARGV_LOG", str(argv_log))
    on_path(fakes)

    out = runner.build(kubefile, f"{image}:v1", "arm64", builder="sealos", inputs="ab" * 32)

    ref = f"{image}:v1-arm64"
    assert out == {"image": ref}
    [argv] = [shlex.split(line) for line in argv_log.read_text().splitlines()]
    label = argv.index(f"io.clusterimage.inputs={'ab' * 32}")
    assert argv[label - 1] == "--label"  # the plan's input digest, which it reads back to skip rebuilds
    del argv[label - 1 : label + 1]
    stamp = argv.index("--timestamp")
    assert argv[stamp + 1] == "0"  # reproducible layers
    del argv[stamp : stamp + 2]
    # sealos defaults --tls-verify to false, so it is always given; flags come before the context, a prepared copy.
    copy = argv[-1]
    assert argv == ["build", "-t", ref, "--platform", "linux/arm64", "--tls-verify=true", "--save-image=false", "-f",
                    f"{copy}/Kubefile", copy]  # the save step saved the embedded images already
    assert copy != str(kubefile) and not os.path.exists(copy)
    arch = subprocess.run(
        ["buildah", "inspect", "--type", "image", "--format", "{{.OCIv1.Architecture}}", ref],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert arch.stdout.strip() == "arm64"


def test_init_sh_runs_in_a_copy_with_arch_app_and_version_and_build_args_reach_the_build(
    kubefile, image, registry, tmp_path
):
    (kubefile / "init.sh").write_text('echo "$@" > manifests/prepared.txt\n')
    (kubefile / "Kubefile").write_text("FROM scratch\nARG GREETING\nLABEL greeting=$GREETING\nCOPY manifests ./m\n")
    outputs = tmp_path / "outputs"
    env = {**os.environ, "CIMG_ARCH": "arm64", "CIMG_BUILDER": "buildah", "CIMG_CONTEXT": str(kubefile),
           "CIMG_IMAGE": image, "CIMG_VERSION": "v1", "CIMG_APP": "myapp", "GITHUB_OUTPUT": str(outputs),
           "CIMG_BUILD_ARGS": "\n  GREETING=hello world  \n# a comment\n"}  # fmt: skip

    subprocess.run(["bash", str(scripts_dir() / "prepare.sh")], env=env, check=True, capture_output=True)
    prepared = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    env |= {"CIMG_CONTEXT": prepared["context"], "CIMG_FILE": prepared["file"]}
    subprocess.run(["bash", str(scripts_dir() / "build.sh")], env=env, check=True, capture_output=True)

    assert not (kubefile / "manifests/prepared.txt").exists()  # the checkout stays clean
    ref = f"{image}:v1-arm64"
    fmt = '{{index .OCIv1.Config.Labels "greeting"}}'
    label = subprocess.run(["buildah", "inspect", "--type", "image", "--format", fmt, ref],
                           capture_output=True, text=True, check=True)  # fmt: skip
    assert label.stdout.strip() == "hello world"
    assert image_file(ref, "m/prepared.txt") == "arm64 myapp v1\n"


def layers_and_created(ref: str) -> tuple[str, str]:
    fmt = "{{range .OCIv1.RootFS.DiffIDs}}{{.}} {{end}}|{{.OCIv1.Created}}"
    out = subprocess.run(["buildah", "inspect", "--type", "image", "--format", fmt, ref],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    layers, created = out.strip().split("|")
    return layers, created


def test_arches_and_rebuilds_share_identical_layers_at_a_fixed_timestamp(kubefile, image, monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    runner.build(kubefile, f"{image}:v1", "amd64", builder="buildah")
    time.sleep(1.1)  # without a fixed time, files get this second's mtime and the layer differs
    (kubefile / "manifests" / "app.yaml").touch()
    runner.build(kubefile, f"{image}:v1", "arm64", builder="buildah")

    amd64, arm64 = layers_and_created(f"{image}:v1-amd64"), layers_and_created(f"{image}:v1-arm64")
    assert amd64 == arm64
    assert amd64[1].startswith("1970-01-01 00:00:00")

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    runner.build(kubefile, f"{image}:v2", "amd64", builder="buildah")
    assert layers_and_created(f"{image}:v2-amd64")[1].startswith("2023-11-14 22:13:20")

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(StepFailed, match=r"timestamp must be whole seconds since the epoch, got 'yesterday'"):
        runner.build(kubefile, f"{image}:v3", "amd64", builder="buildah")


def test_interleaved_runs_never_publish_a_mixed_list(kubefile, image, creds, tmp_path):
    """Run A and run B build the same tags from different inputs, interleaved A-amd64, B-amd64, B-arm64, A-arm64."""
    b_context = tmp_path / "b"
    shutil.copytree(kubefile, b_context)
    (b_context / "manifests" / "app.yaml").write_text("kind: ConfigMap  # run B\n")
    runs = {"A": (kubefile, "a"), "B": (b_context, "b")}
    digests = {}
    for run, arch in (("A", "amd64"), ("B", "amd64"), ("B", "arm64"), ("A", "arm64")):
        context, letter = runs[run]
        digests[(run, arch)] = letter * 63 + ("1" if arch == "amd64" else "2")
        out = runner.build(context, f"{image}:v1", arch, push=True, tls_verify=False, inputs=digests[(run, arch)], builder="buildah")
        digests[(run, arch, "pushed")] = out["digest"]

    def inputs(run):
        return [f"{arch}={digests[(run, arch)]}" for arch in ("amd64", "arm64")]

    with pytest.raises(StepFailed, match=r"amd64: .*:v1-amd64 carries inputs b{63}1, not this run's a{63}1"):
        runner.manifest(f"{image}:v1", ["amd64", "arm64"], inputs=inputs("A"), tls_verify=False)
    assert not creds.has(f"{image}:v1")
    with pytest.raises(StepFailed, match=r"arm64: .*:v1-arm64 carries inputs a{63}2, not this run's b{63}2"):
        runner.manifest(f"{image}:v1", ["amd64", "arm64"], inputs=inputs("B"), tls_verify=False)
    # Run A re-pushes its amd64 image (a retry); now every arch tag holds one run's image, and only that run publishes.
    again = runner.build(kubefile, f"{image}:v1", "amd64", push=True, tls_verify=False, inputs=digests[("A", "amd64")], builder="buildah")
    runner.manifest(f"{image}:v1", ["amd64", "arm64"], inputs=inputs("A"), tls_verify=False)
    listed = {m["digest"] for m in json.loads(creds.raw(f"{image}:v1"))["manifests"]}
    assert listed == {again["digest"], digests[("A", "arm64", "pushed")]}


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_an_elf_binary_of_the_other_arch_refuses_the_push(kubefile, image, creds, arch):
    """This machine's /bin/true is an x86-64 ELF file, and an arm64 header is written here: each arch gets the other's."""
    (kubefile / "opt").mkdir()
    if arch == "arm64":
        shutil.copy("/bin/true", kubefile / "opt" / "tool")
        wrong = "amd64"
    else:
        # An ELF64 little-endian header for e_machine 0xB7 (AArch64); the check reads no further than the header.
        (kubefile / "opt" / "tool").write_bytes(b"\x7fELF\x02\x01\x01" + b"\0" * 11 + b"\xb7\x00" + b"\0" * 44)
        wrong = "arm64"
    (kubefile / "Kubefile").write_text("FROM scratch\nCOPY manifests ./manifests\nCOPY opt ./opt\n")

    with pytest.raises(StepFailed, match=rf"not all linux/{arch}: /opt/tool: an ELF file for {wrong}, not {arch}; "
                                         r"removed it before any push"):  # fmt: skip
        runner.build(kubefile, f"{image}:v1", arch, push=True, tls_verify=False, builder="buildah")
    assert not creds.has(f"{image}:v1-{arch}")


def test_a_registry_that_accepts_and_never_answers_fails_the_fan_in_in_bounded_time(tmp_path):
    """A listener that takes the connection and says nothing: each attempt ends at CIMG_NET_TIMEOUT."""
    import sys

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    host = f"127.0.0.1:{silent.getsockname()[1]}"
    probe = ("import sys; from clusterimg.cli import main; "
             f"sys.exit(main(['manifest', '{host}/e2e/app:v1', '--arch', 'amd64', '--no-tls-verify', '--retries', '2']))")
    env = {**os.environ, "CIMG_NET_TIMEOUT": "2", "CIMG_RETRY_DELAY": "0",
           "PYTHONPATH": str(scripts_dir().parents[0] / "generator")}  # fmt: skip
    start = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    finally:
        silent.close()
    took = time.monotonic() - start
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: manifest.sh: not published: {host}/e2e/app:v1")
    assert took < 30  # 2 attempts of 2 s each, and the tools' start-up


class FirstListPutFails(http.server.BaseHTTPRequestHandler):
    """Passes every request to the registry behind it, except the first PUT of the tag `v1`, answered with a 500."""

    backend = ""
    failed: list = []

    def log_message(self, *args):
        pass

    def _pass(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while size := int(self.rfile.readline().split(b";")[0], 16):
                body += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.command == "PUT" and self.path.endswith("/manifests/v1") and not self.failed:
            self.failed.append(self.path)
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        conn = http.client.HTTPConnection(self.backend, timeout=30)
        conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for key, value in self.headers.items():  # repeated headers (Accept) stay repeated
            if key.lower() not in ("connection", "content-length", "transfer-encoding"):
                conn.putheader(key, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        reply = conn.getresponse()
        data = reply.read()
        self.send_response(reply.status)
        for key, value in reply.getheaders():
            if key.lower() not in ("connection", "transfer-encoding", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        conn.close()

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _pass


def test_a_500_on_the_list_put_is_retried_and_leaves_no_local_list(kubefile, tmp_path, monkeypatch):
    root = tmp_path / "open"
    root.mkdir()
    auth = tmp_path / "anonymous.json"  # an open registry: an auth file with no login in it
    auth.write_text('{"auths": {}}')
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth))
    with loopback_registry(root, None, None) as backend:
        handler = type("Handler", (FirstListPutFails,), {"backend": backend, "failed": []})
        proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=proxy.serve_forever, args=(0.05,), daemon=True).start()
        image = f"127.0.0.1:{proxy.server_address[1]}/e2e/retried"
        try:
            for arch in ("amd64", "arm64"):
                runner.build(kubefile, f"{image}:v1", arch, push=True, tls_verify=False, builder="buildah")
            before = set(subprocess.run(["buildah", "images", "--noheading", "--format", "{{.ID}}"],
                                        capture_output=True, text=True).stdout.split())  # fmt: skip
            out = runner.manifest(f"{image}:v1", ["amd64", "arm64"], tls_verify=False)
            after = set(subprocess.run(["buildah", "images", "--noheading", "--format", "{{.ID}}"],
                                       capture_output=True, text=True).stdout.split())  # fmt: skip
        finally:
            proxy.shutdown()
            proxy.server_close()
            subprocess.run(["buildah", "rmi", "-f", f"{image}:v1-amd64", f"{image}:v1-arm64"], capture_output=True)
    assert handler.failed, "the proxy never saw the list's PUT"
    assert out["digest"].startswith("sha256:")
    assert after <= before  # the local list is gone
