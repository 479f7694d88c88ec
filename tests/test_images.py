"""`clusterimg-gen images`: what a build embeds, read from the context alone (no registry here)."""

import json
import os
import subprocess

import pytest
import yaml

from clusterimg import images, registry, yamlio
from clusterimg.paths import scripts_dir
from helpers import ROOT, write_tree

SHIM = """\
# calico's images
docker.io/calico/cni:v3.26.1
   quay.io/tigera/operator:v1.30.4   # operator

docker.io/calico/cni:v3.26.1
"""

MULTI_DOC = """\
apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      containers:
        - name: node
          image: docker.io/calico/node:v3.26.1
      initContainers:
        - name: cni
          image: "docker.io/calico/cni:v3.26.1"
---
kind: CronJob
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{name: tidy, image: busybox:1.36}]
---
"""

NOT_YAML_YET = """\
spec:
  containers:
    - image: {{ .registry }}/calico/kube-controllers:v3.26.1
    - image: "docker.io/library/redis:7"  # cache
  {{- if .debug }}
  debug: true
  {{- end }}
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


def test_images_lists_shim_manifests_and_chart_values_sorted_once_each(cli, tmp_path):
    ctx = context(tmp_path, {
        "images/shim/CalicoImageList": SHIM,
        "manifests/calico.yaml": MULTI_DOC,
        "manifests/extra/controllers.tmpl": NOT_YAML_YET,
        "charts/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 0.1.0\nappVersion: v1.0.0\n",
        "charts/app/values.yaml": VALUES,
        "manifests/README.md": "image: not-read:1\n",
        "charts/app/templates/deploy.yaml": "image: not-read-either:1\n",
    })  # fmt: skip

    assert listed(cli, ctx) == {"images": [
        "acme/migrate:v1.0.0",
        "busybox:1.36",
        "docker.io/calico/cni:v3.26.1",
        "docker.io/calico/node:v3.26.1",
        "docker.io/library/nginx:1.25",
        "docker.io/library/redis:7",
        "ghcr.io/acme/app:v2",
        "quay.io/tigera/operator:v1.30.4",
    ]}  # fmt: skip


def test_text_output_is_one_image_a_line_and_names_each_templated_value_it_skipped(cli, tmp_path):
    ctx = context(tmp_path, {"manifests/controllers.tmpl": NOT_YAML_YET,
                             "manifests/app.yaml": 'image: "{{ .Values.image }}"\n'})  # fmt: skip

    result = cli("images", ctx)

    assert result.code == 0
    assert result.out == "docker.io/library/redis:7\n"
    assert "skipped '{{ .registry }}/calico/kube-controllers:v3.26.1' in manifests/controllers.tmpl" in result.err
    assert "skipped '{{ .Values.image }}' in manifests/app.yaml: template syntax" in result.err


def test_shim_list_skips_comments_and_blank_lines_and_strips_whitespace():
    assert images.from_shim(SHIM) == ["docker.io/calico/cni:v3.26.1", "quay.io/tigera/operator:v1.30.4",
                                      "docker.io/calico/cni:v3.26.1"]  # fmt: skip


def test_manifest_images_come_from_every_document_and_nested_list():
    assert sorted(images.from_manifest(MULTI_DOC, "manifests/calico.yaml")) == [
        "busybox:1.36", "docker.io/calico/cni:v3.26.1", "docker.io/calico/node:v3.26.1"
    ]  # fmt: skip


def test_tmpl_that_is_not_yaml_is_read_line_by_line():
    assert images.from_manifest(NOT_YAML_YET, "manifests/x.tmpl") == [
        "{{ .registry }}/calico/kube-controllers:v3.26.1", "docker.io/library/redis:7"
    ]  # fmt: skip


def test_chart_values_give_strings_and_repository_tag_with_optional_registry():
    docs = list(yaml.load_all(VALUES, Loader=yamlio.Loader))
    assert sorted(images.from_documents(docs, default_tag="1.0")) == [
        "acme/migrate:1.0", "busybox:1.36", "docker.io/library/nginx:1.25", "ghcr.io/acme/app:v2"
    ]  # fmt: skip
    assert "acme/migrate" not in " ".join(images.from_documents(docs))  # no tag and no appVersion: nothing to name


def test_a_context_that_embeds_nothing_lists_nothing_and_its_check_asks_no_registry(cli, tmp_path, monkeypatch):
    ctx = context(tmp_path, {"Kubefile": "FROM scratch\n", "manifests/empty.yaml": "", "images/shim/none": "# -\n"})
    monkeypatch.setenv("PATH", str(tmp_path))  # no skopeo to ask

    result = cli("images", ctx, "--check", "--format", "json")

    assert (result.code, json.loads(result.out)) == (0, {"images": [], "missing": []})


def test_invalid_yaml_manifest_is_one_line_naming_file_and_line(cli, tmp_path):
    ctx = context(tmp_path, {"manifests/bad.yaml": "kind: Pod\nspec: [unclosed\n"})

    result = cli("images", ctx)

    assert result.code == 2
    assert result.err.startswith("error: manifests/bad.yaml: not valid YAML: ")
    assert "line 3" in result.err and len(result.err.splitlines()) == 1


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
        (["--check", "--arch", "s390x"], {}, "'s390x' is not one of 'amd64', 'arm64'"),
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

    found = registry.platforms(["r.io/x:1"], tls_verify=True, retries=2)

    assert found == {"r.io/x:1": expected}
    assert len(log.read_text().splitlines()) == calls


def test_action_checks_embedded_images_right_before_build_with_inputs_only_through_env():
    action = yamlio.load((ROOT / "action.yml").read_text())
    steps = action["runs"]["steps"]
    names = [s["name"] for s in steps]
    check = steps[names.index("Build") - 1]

    assert check["name"] == "Check embedded images"
    assert check["if"] == "inputs.check-images == 'true'"
    assert action["inputs"]["check-images"]["default"] == "true"
    assert check["run"] == 'bash "$CIMG_ACTION_PATH/scripts/images.sh"'
    assert check["env"]["CIMG_ARCH"] == steps[names.index("Build")]["env"]["CIMG_ARCH"]
    assert {"CIMG_CONTEXT", "CIMG_TLS_VERIFY", "CIMG_USERNAME", "CIMG_PASSWORD", "CIMG_REGISTRY"} <= set(check["env"])


def test_preflight_of_a_context_without_embedded_images_succeeds_without_installing_anything(tmp_path):
    ctx = context(tmp_path, {"Kubefile": "FROM scratch\n"})
    env = {**os.environ, "CIMG_CONTEXT": str(ctx), "CIMG_ARCH": "arm64", "CIMG_GEN": "false",
           "CIMG_ACTION_PATH": str(tmp_path / "no-action-here")}  # fmt: skip

    proc = subprocess.run(["bash", str(scripts_dir() / "images.sh")], env=env, capture_output=True, text=True)

    assert proc.returncode == 0, proc.stderr
    assert "no embedded images to check" in proc.stderr
