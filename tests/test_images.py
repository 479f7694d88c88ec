"""`clusterimg-gen images`: what a build embeds, read from the context alone (no registry here)."""

import json
import os
import subprocess
import sys
import tarfile

import pytest
import yaml

from clusterimg import images, registry, runner, yamlio
from clusterimg.paths import scripts_dir
from helpers import ROOT, write_tree

# Shapes from labring's cluster-image trees and the upstream manifests they vendor.
SHIM = """\
# calico's images
docker.io/calico/cni:v3.26.1
   quay.io/tigera/operator:v1.30.4

"docker.io/calico/cni:v3.26.1"
busybox:1.36
"""

# Not YAML: a flow sequence left open, and a Go template around the containers; sealos reads it line by line.
NOT_YAML = """\
apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      containers: [
        - name: node
          image: docker.io/calico/node:v3.26.1
      {{- if .debug }}
      initContainers:
        - image: "docker.io/calico/cni:v3.26.1"
      {{- end }}
"""

# A controller's images as keys (cert-manager, tidb-operator style): sealos matches `image:` exactly, case and all.
CONTROLLER_IMAGES = """\
data:
  controllerImages:
    webhookimage: quay.io/jetstack/cert-manager-webhook:v1.12.0
    cainjector-image: 'quay.io/jetstack/cert-manager-cainjector:v1.12.0'
    acmesolver:
      image: quay.io/jetstack/cert-manager-acmesolver:v1.12.0
  tidbBackupManagerImage: pingcap/tidb-backup-manager:v1.5.0
"""

KUSTOMIZE = """\
# image: docker.io/library/commented-out:1
spec:
  containers:
    - name: manager
      image: controller:latest
    - name: proxy
      image: IMAGE_PLACEHOLDER
    - name: sidecar
      image: ${SIDECAR_IMAGE}
    - name: tmpl
      image: "{{ .Values.image }}"
    - name: trailing
      image: nginx:1 # a trailing comment is part of the value, as sealos reads it
    - name: nested
      image:
        repository: not/a-line-ref
"""

VALUES = """\
image:
  registry: ghcr.io
  repository: acme/app
  tag: v2
sidecar:
  image: docker.io/library/nginx:1.25
jobs:
  - name: migrate
    image:
      repository: acme/migrate
      tag: ""
  - name: plain
    image: busybox:1.36
"""


def context(tmp_path, files):
    return write_tree(tmp_path / "ctx", files)


def listed(cli, ctx):
    result = cli("images", ctx, "--format", "json")
    assert result.code == 0, result.err
    return json.loads(result.out)


def test_images_come_from_shim_manifests_and_chart_values_normalised_sorted_once_each(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable))  # no helm
    ctx = context(tmp_path, {
        "images/shim/CalicoImageList": SHIM,
        "images/shim/more/Extra": "ghcr.io/acme/extra:1\n",
        "manifests/calico.yaml": NOT_YAML,
        "manifests/deep/er/redis.tmpl": "    - image: docker.io/library/redis:7\n",
        "manifests/UPPER.YML": "image: quay.io/acme/upper:1\n",
        "charts/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 0.1.0\nappVersion: v1.0.0\n",
        "charts/app/values.yaml": VALUES,
        "charts/app.values.yaml": "sidecar:\n  image: docker.io/library/nginx:1.27\n",
        "manifests/README.md": "image: not-read:1\n",
        "charts/app/templates/deploy.yaml": "image: not-read-either:1\n",
    })  # fmt: skip

    assert listed(cli, ctx) == {"images": [
        "docker.io/acme/migrate:v1.0.0",
        "docker.io/calico/cni:v3.26.1",
        "docker.io/calico/node:v3.26.1",
        "docker.io/library/busybox:1.36",
        "docker.io/library/nginx:1.27",
        "docker.io/library/redis:7",
        "ghcr.io/acme/app:v2",
        "ghcr.io/acme/extra:1",
        "quay.io/acme/upper:1",
        "quay.io/tigera/operator:v1.30.4",
    ]}  # fmt: skip


def test_a_manifest_that_is_not_valid_yaml_still_gives_its_image_lines(cli, tmp_path):
    ctx = context(tmp_path, {"manifests/broken.yaml": NOT_YAML, "manifests/bad.yaml": "kind: Pod\nspec: [unclosed\n"})

    result = cli("images", ctx)

    assert (result.code, result.err) == (0, "")
    assert result.out == "docker.io/calico/cni:v3.26.1\ndocker.io/calico/node:v3.26.1\n"


def test_any_key_that_contains_image_colon_counts_and_camel_case_image_does_not():
    refs, skipped = images.from_manifest(CONTROLLER_IMAGES)

    assert sorted(map(str, refs)) == [
        "quay.io/jetstack/cert-manager-acmesolver:v1.12.0",
        "quay.io/jetstack/cert-manager-cainjector:v1.12.0",
        "quay.io/jetstack/cert-manager-webhook:v1.12.0",
    ]
    assert skipped == []


def test_comment_lines_placeholders_and_trailing_comments_are_skipped_as_sealos_skips_them(cli, tmp_path):
    ctx = context(tmp_path, {"manifests/manager.yaml": KUSTOMIZE})

    result = cli("images", ctx)

    assert result.code == 0
    # A bare name is a valid reference, so sealos saves (and fails to pull) the kustomize name `controller` too.
    assert result.out == "docker.io/library/controller:latest\n"
    assert result.err.splitlines() == [
        f"warning: skipped {value!r} in manifests/manager.yaml: not an image reference"
        for value in ("${SIDECAR_IMAGE}", "IMAGE_PLACEHOLDER", "nginx:1 # a trailing comment is part of the value, "
                      "as sealos reads it", "{{ .Values.image }}")
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("value", "normalised"),
    [
        ("nginx:1", "docker.io/library/nginx:1"),
        ("nginx", "docker.io/library/nginx"),
        ("'nginx:1'", "docker.io/library/nginx:1"),
        ('"calico/cni:v3.26.1"', "docker.io/calico/cni:v3.26.1"),
        ("index.docker.io/library/nginx:1", "docker.io/library/nginx:1"),
        ("localhost/app:1", "localhost/app:1"),
        ("127.0.0.1:5000/a/b:c", "127.0.0.1:5000/a/b:c"),
        ("registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9"),
        (f"nginx:1@sha256:{'a' * 64}", "docker.io/library/nginx:1"),
        (f"nginx@sha256:{'a' * 64}", f"docker.io/library/nginx@sha256:{'a' * 64}"),
        ("Nginx:1", None),
        ("nginx:", None),
        ("a" * 64, None),
        ("nginx@sha256:abc", None),
        ("nginx:1 # cache", None),
        ("-nginx", None),
    ],
)
def test_manifest_values_are_normalised_and_a_value_that_is_no_reference_is_left_out(value, normalised):
    refs, skipped = images.from_manifest(f"      image: {value}\n")

    assert ([str(r) for r in refs], skipped) == (([normalised], []) if normalised else ([], [value.strip("'\"")]))


def test_shim_lines_are_trimmed_and_unquoted_and_blank_and_comment_lines_skipped():
    assert [str(r) for r in images.from_shim(SHIM, "images/shim/List")] == [
        "docker.io/calico/cni:v3.26.1", "quay.io/tigera/operator:v1.30.4", "docker.io/calico/cni:v3.26.1",
        "docker.io/library/busybox:1.36",
    ]  # fmt: skip


def test_a_shim_line_that_is_no_reference_fails_naming_file_and_line_as_sealos_fails_its_build(cli, tmp_path):
    ctx = context(tmp_path, {"images/shim/List": "# ok\nbusybox:1.36\nquay.io/x/y:1   # a comment\n"})

    result = cli("images", ctx)

    assert result.code == 2
    assert result.err == ("error: images/shim/List:3: 'quay.io/x/y:1   # a comment' is not an image reference "
                          "(sealos build fails on it)\n")  # fmt: skip


def test_chart_values_give_strings_and_repository_tag_with_optional_registry():
    docs = yaml.load(VALUES, Loader=yamlio.Loader)
    assert sorted(images.from_values(docs, default_tag="1.0")) == [
        "acme/migrate:1.0", "busybox:1.36", "docker.io/library/nginx:1.25", "ghcr.io/acme/app:v2"
    ]  # fmt: skip
    assert "acme/migrate" not in " ".join(images.from_values(docs))  # no tag and no appVersion: nothing to name


def test_without_helm_charts_are_read_from_their_values_and_the_listing_says_so(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable))
    chart = {"apiVersion": "v2", "name": "web", "version": "0.1.0", "appVersion": "2.0"}
    ctx = context(tmp_path, {"charts/web/Chart.yaml": json.dumps(chart), "charts/web/values.yaml": VALUES})
    packed = write_tree(tmp_path / "packed", {"db/Chart.yaml": "name: db\nversion: 0.1.0\n",
                                              "db/values.yaml": "image: postgres:16\n"})  # fmt: skip
    with tarfile.open(ctx / "charts" / "db-0.1.0.tgz", "w:gz") as tar:
        tar.add(packed / "db", arcname="db")

    result = cli("images", ctx)

    assert "docker.io/library/postgres:16\n" in result.out and "docker.io/acme/migrate:2.0\n" in result.out
    assert result.err.startswith("warning: charts/ read without helm: only image and repository+tag keys")


def test_with_helm_on_path_each_chart_is_rendered_with_its_values_file_and_read_line_by_line(
    cli, tmp_path, monkeypatch
):
    # A stand-in for helm that prints a rendered manifest and records its arguments.
    script = '#!/bin/sh\necho "$@" >>"$HELM_LOG"\nprintf "# Source: x\\n  image: \\"ghcr.io/acme/web:2.0\\"\\n"\n'
    bin_dir = write_tree(tmp_path / "bin", {"helm": script})
    (bin_dir / "helm").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("HELM_LOG", str(tmp_path / "helm.log"))
    ctx = context(tmp_path, {"charts/web/Chart.yaml": "name: website\nversion: 0.1.0\n",
                             "charts/website.values.yaml": "replicas: 1\n"})  # fmt: skip

    result = cli("images", ctx)

    assert (result.code, result.out, result.err) == (0, "ghcr.io/acme/web:2.0\n", "")
    rendered = f"template dryrun {ctx / 'charts/web'} --values {ctx / 'charts/website.values.yaml'}\n"
    assert (tmp_path / "helm.log").read_text() == rendered


def test_save_format_pairs_each_source_with_its_name_in_registry_without_the_host(cli, tmp_path):
    digest = "sha256:" + "b" * 64
    ctx = context(tmp_path, {
        "images/shim/List": f"nginx:1\ndocker.io/library/nginx:1\nquay.io/a/b\nghcr.io/c/d@{digest}\n",
        "images/skopeo/tar.txt": "docker-archive:pause.tar@registry.k8s.io/pause:3.9\n",
    })  # fmt: skip

    result = cli("images", ctx, "--format", "save")

    assert (result.code, result.out.splitlines()) == (0, [
        "docker://quay.io/a/b a/b:latest",
        f"docker://ghcr.io/c/d@{digest} c/d@{digest}",
        "docker://docker.io/library/nginx:1 library/nginx:1",
        "docker-archive:images/skopeo/pause.tar registry.k8s.io/pause:3.9",
    ])  # fmt: skip


def test_a_context_that_embeds_nothing_lists_nothing_and_its_check_asks_no_registry(cli, tmp_path, monkeypatch):
    ctx = context(tmp_path, {"Kubefile": "FROM scratch\n", "manifests/empty.yaml": "", "images/shim/none": "# -\n"})
    monkeypatch.setenv("PATH", str(tmp_path))  # no skopeo to ask

    result = cli("images", ctx, "--check", "--format", "json")

    assert (result.code, json.loads(result.out)) == (0, {"images": [], "missing": []})


@pytest.mark.parametrize("make", [lambda t: t / "nowhere", lambda t: write_tree(t, {"file": ""}) / "file"])
def test_bad_context_is_a_usage_error(cli, tmp_path, make):
    result = cli("images", make(tmp_path))

    assert result.code == 2
    assert "Invalid value for 'CONTEXT'" in result.err and "Traceback" not in result.err


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--arch", "arm64"], {}, "--arch needs --check"),
        (["--check"], {"REGISTRY_USERNAME": "ci"}, "name the registry it logs in to with --registry"),
        (["--check", "--arch", "s390x"], {}, "'s390x': expected one of amd64, arm64"),
    ],
)
def test_misused_options_are_usage_errors(cli, tmp_path, monkeypatch, args, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    result = cli("images", context(tmp_path, {"images/shim/list": "busybox:1.36\n"}), *args)

    assert result.code == 2
    assert message in result.err


def test_username_without_password_fails_before_any_lookup(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("REGISTRY_USERNAME", "ci")
    monkeypatch.delenv("REGISTRY_PASSWORD", raising=False)

    result = cli("images", context(tmp_path, {"images/shim/list": "busybox:1.36\n"}), "--check", "--registry", "r.io")

    assert (result.code, result.err) == (2, "error: a username was given for r.io but no password\n")


@pytest.mark.parametrize(
    ("doc", "platforms"),
    [
        ({"mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
            {"digest": "sha256:a", "platform": {"os": "linux", "architecture": "amd64"}},
            {"digest": "sha256:b", "platform": {"os": "unknown", "architecture": "unknown"}},
        ]}, {"linux/amd64", "unknown/unknown"}),
        ({"schemaVersion": 2, "config": {"digest": "sha256:c"}, "layers": []}, None),
        ({"architecture": "arm64", "os": "linux", "rootfs": {}}, {"linux/arm64"}),
        ({"schemaVersion": 1, "architecture": "amd64", "fsLayers": []}, {"linux/amd64"}),
    ],
    ids=["index", "single-manifest-needs-its-config", "config", "schema1"],
)
def test_platforms_come_from_a_list_or_from_an_image_config(doc, platforms):
    assert registry.platforms_of(doc) == platforms


@pytest.mark.parametrize(
    ("doc", "lines", "code"),
    [
        ('{"manifests": [{"digest": "sha256:a", "platform": {"os": "linux", "architecture": "arm64"}},'
         ' {"digest": "sha256:b"}, {"platform": {"os": "linux", "architecture": "amd64"}, "digest": "sha256:c"}]}',
         "linux/arm64 sha256:a\nnone/none sha256:b\nlinux/amd64 sha256:c\n", 0),
        ('{"manifests": []}', "", 0),
        ('{"schemaVersion": 2, "layers": []}', "", 1),
        ("not json", "", 1),
    ],
    ids=["list-in-order", "empty-list", "not-a-list", "not-json"],
)
def test_the_fan_in_reads_a_list_as_the_plan_does(doc, lines, code):
    """manifest.sh reads lists through `python -m clusterimg.registry index`: one reader for the plan and the leg."""
    proc = subprocess.run([sys.executable, "-m", "clusterimg.registry", "index"], input=doc, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "generator")})
    assert (proc.returncode, proc.stdout) == (code, lines)


def test_check_names_each_image_and_arch_the_registry_lacks_and_why():
    found = {
        "a:amd64-only": registry.Platforms(frozenset({"linux/amd64"})),
        "b:both": registry.Platforms(frozenset({"linux/amd64", "linux/arm64"})),
        "c:gone": registry.Platforms(None),
        "d:unreachable": registry.Platforms(frozenset(), "connection refused (after 3 attempts)"),
    }

    missed = images.missing(sorted(found), ["amd64", "arm64"], found)

    assert [(m.image, m.arch, m.problem) for m in missed] == [
        ("a:amd64-only", "arm64", "no linux/arm64 (has linux/amd64)"),
        ("c:gone", "amd64", "image not found"),
        ("c:gone", "arm64", "image not found"),
        ("d:unreachable", "amd64", "could not check: connection refused (after 3 attempts)"),
        ("d:unreachable", "arm64", "could not check: connection refused (after 3 attempts)"),
    ]
    table = images.report(images.Listing(tuple(sorted(found))), missed, "text").split("\n\n")[1]
    assert table.splitlines()[:2] == [
        "IMAGE          ARCH   PROBLEM",
        "a:amd64-only   arm64  no linux/arm64 (has linux/amd64)",
    ]


@pytest.mark.parametrize(
    ("stderr", "calls", "expected"),
    [
        ("Error: reading manifest 1 in r.io/x: manifest unknown", 1, registry.Platforms(None)),
        ('time="t" level=fatal msg="pinging \\"r.io\\": connection refused"', 2,
         registry.Platforms(frozenset(), 'pinging "r.io": connection refused (after 2 attempts)')),
    ],
    ids=["absent-asked-once", "unreachable-retried-then-reported"],
)
def test_registry_lookups_retry_a_bounded_number_of_times(tmp_path, monkeypatch, stderr, calls, expected):
    log = tmp_path / "calls"
    skopeo = write_tree(tmp_path, {"bin/skopeo": f"#!/bin/sh\necho >>{log}\necho '{stderr}' >&2\nexit 1\n"})
    (skopeo / "bin/skopeo").chmod(0o755)
    monkeypatch.setenv("PATH", f"{skopeo / 'bin'}{os.pathsep}{os.environ['PATH']}")

    found = registry.platforms(["r.io/x:1"], own="r.io", tls_verify=True, retries=2)

    assert found == {"r.io/x:1": expected}
    assert len(log.read_text().splitlines()) == calls


def test_action_checks_then_saves_embedded_images_right_before_build_with_inputs_only_through_env():
    action = yamlio.load((ROOT / "action.yml").read_text())
    steps = action["runs"]["steps"]
    names = [s["name"] for s in steps]
    check, save, build = steps[names.index("Build") - 2 : names.index("Build") + 1]

    assert (check["name"], save["name"]) == ("Check embedded images", "Save embedded images")
    assert check["if"] == "inputs.check-images == 'true'"
    assert save["if"] == "inputs.save-images == 'true'"
    assert action["inputs"]["check-images"]["default"] == action["inputs"]["save-images"]["default"] == "true"
    assert check["run"] == 'bash "$CIMG_ACTION_PATH/scripts/images.sh"'
    assert save["run"] == 'bash "$CIMG_ACTION_PATH/scripts/save.sh"'
    assert check["env"]["CIMG_ARCH"] == save["env"]["CIMG_ARCH"] == build["env"]["CIMG_ARCH"]
    for step in (check, save):
        assert {"CIMG_CONTEXT", "CIMG_TLS_VERIFY", "CIMG_USERNAME", "CIMG_PASSWORD", "CIMG_REGISTRY"} <= set(step["env"])
        assert "${{" not in step["run"]
    assert action["outputs"]["embedded-images"]["value"] == "${{ steps.save.outputs.images }}"


def test_the_local_runner_reads_multi_line_outputs_as_github_writes_them():
    text = "image=r/a:v1-arm64\nimages<<CIMG_EOF_1\nr/x:1@sha256:a\nr/y:2@sha256:b\nCIMG_EOF_1\ndigest=sha256:c\n"

    assert runner.parse_outputs(text) == {
        "image": "r/a:v1-arm64", "images": "r/x:1@sha256:a\nr/y:2@sha256:b", "digest": "sha256:c"
    }  # fmt: skip


def test_preflight_of_a_context_without_embedded_images_succeeds_without_installing_anything(tmp_path):
    ctx = context(tmp_path, {"Kubefile": "FROM scratch\n"})
    env = {**os.environ, "CIMG_CONTEXT": str(ctx), "CIMG_ARCH": "arm64", "CIMG_GEN": "false",
           "CIMG_ACTION_PATH": str(tmp_path / "no-action-here")}  # fmt: skip

    proc = subprocess.run(["bash", str(scripts_dir() / "images.sh")], env=env, capture_output=True, text=True)

    assert proc.returncode == 0, proc.stderr
    assert "no embedded images to check" in proc.stderr


def test_save_step_of_a_context_without_embedded_images_succeeds_without_installing_anything(tmp_path):
    ctx = context(tmp_path, {"Kubefile": "FROM scratch\n", "etc/app.conf": "image: not-a-manifest:1\n"})
    env = {**os.environ, "CIMG_CONTEXT": str(ctx), "CIMG_ARCH": "arm64", "CIMG_GEN": "false",
           "CIMG_ACTION_PATH": str(tmp_path / "no-action-here")}  # fmt: skip

    proc = subprocess.run(["bash", str(scripts_dir() / "save.sh")], env=env, capture_output=True, text=True)

    assert proc.returncode == 0, proc.stderr
    assert "nothing to save" in proc.stderr
    assert not (ctx / "registry").exists()


def test_tls_verify_false_applies_to_the_configured_registry_only():
    from clusterimg.registry import upstream_tls

    assert upstream_tls("r.example:5000/acme/app:1", "r.example:5000", False) == ["--tls-verify=false"]
    assert upstream_tls("r.example:5000/acme/app:1", "r.example:5000", True) == ["--tls-verify=true"]
    # Every other registry: skopeo's default, which verifies (registry-1.docker.io, quay.io, …).
    assert upstream_tls("nginx:1", "r.example:5000", False) == []
    assert upstream_tls("quay.io/tigera/operator:v1", "r.example:5000", False) == []


def test_a_shim_list_linked_to_a_file_outside_the_context_is_refused_unread(cli, tmp_path):
    ctx = tmp_path / "ctx"
    (ctx / "images/shim").mkdir(parents=True)
    secret = tmp_path / "secret"
    secret.write_text("root:$6$very-secret-hash:20228:0:99999:7:::\n")
    (ctx / "images/shim/list").symlink_to(secret)
    result = cli("images", ctx)
    assert result.code == 2
    assert result.err == "error: images/shim/list: a link out of the context: expected a file in the context\n"
    assert "very-secret-hash" not in result.out + result.err


@pytest.mark.parametrize(("files", "args"), [
    ({"images/shim/list": "busybox:1.36\n# a comment\n'quay.io/a/b:v1'\n"}, ["--format", "save"]),
    ({"manifests/a.yaml": "image: nginx:1.25\n  fooImage: x\n  image: ${IMG}\n"}, ["--format", "save"]),
    ({"manifests/a.yaml": "image: nginx:1.25\n", "images/skopeo/tar.txt": "docker-archive:a.tar nginx:old\n"},
     ["--format", "save"]),
    ({"manifests/a.yaml": "image: nginx:1.25\nimage: registry.k8s.io/pause:3.9\n"}, []),
    ({}, ["--format", "save"]),
], ids=["shim", "manifests-with-skips", "archives", "text", "nothing"])
def test_the_legs_stdlib_lister_answers_as_clusterimg_gen_images(cli, tmp_path, files, args):
    """save.sh and images.sh list with `python3 -m clusterimg.images` (no install) unless a context has charts/."""
    ctx = write_tree(tmp_path / "ctx", files)
    ctx.mkdir(exist_ok=True)
    result = cli("images", ctx, *args)
    proc = subprocess.run([sys.executable, "-S", "-m", "clusterimg.images", str(ctx), *args], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "generator")})
    assert (proc.returncode, proc.stdout, proc.stderr) == (result.code, result.out, result.err)
