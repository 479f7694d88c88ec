"""The shipped examples build locally with `clusterimg-gen build` and `manifest`, stage by stage, as the README says."""

import json
import secrets
import shutil
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from clusterimg.cli import main
from helpers import localize_embedded

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def run(capsys, *args) -> str:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    assert code == 0, out.err[-3000:]
    return out.out


def test_examples_build_locally_with_buildah_in_stage_order(creds, tmp_path, capsys):
    repo = tmp_path / "examples"
    shutil.copytree(ROOT / "examples", repo, ignore=shutil.ignore_patterns(".github"))
    namespace = f"ex{secrets.token_hex(3)}"
    config = (repo / "clusterimage.yaml").read_text().replace("registry: docker.io", f"registry: '{creds.host}'")
    (repo / "clusterimage.yaml").write_text(config.replace("repository: example", f"repository: {namespace}"))
    openebs = repo / "applications/openebs/v3.9.0/Kubefile"
    openebs.write_text(openebs.read_text().replace("docker.io/example/", f"{creds.host}/{namespace}/"))
    localize_embedded(repo, creds.host, tmp_path / "upstream", creds.authfile)

    plan = json.loads(run(capsys, "plan", "--repo", repo, "--all", "--format", "json"))
    assert {(t["app"], t["stage"]) for t in plan["build"]} >= {("calico", 0), ("openebs", 1)}
    sboms = {}
    for stage in sorted({t["stage"] for t in plan["build"]}):
        for t in (t for t in plan["build"] if t["stage"] == stage):
            out = json.loads(run(capsys, "build", repo / t["context"], "--image", f"{t['name']}:{t['version']}",
                                 "--arch", t["arch"], "--inputs", t["inputs"], "--builder", "buildah", "--push",
                                 "--no-tls-verify"))  # fmt: skip
            sboms[out["image"]] = (out, Path(out["sbom"]).read_text())
        for m in (m for m in plan["manifest"] if m["stage"] == stage):
            run(capsys, "manifest", m["image"], *[f"--arch={a}" for a in m["arches"]], "--no-tls-verify")

    for m in plan["manifest"]:
        index = json.loads(creds.raw(m["image"]))
        assert sorted(e["platform"]["architecture"] for e in index["manifests"]) == m["arches"]
    for arch in ("amd64", "arm64"):
        parent = json.loads(creds.raw(f"{creds.host}/{namespace}/calico:v3.26.1-{arch}"))["layers"]
        child = json.loads(creds.raw(f"{creds.host}/{namespace}/openebs:v3.9.0-{arch}"))["layers"]
        assert [x["digest"] for x in child[: len(parent)]] == [x["digest"] for x in parent]
        assert creds.config(f"{creds.host}/{namespace}/openebs:v3.9.0-{arch}")["architecture"] == arch

    # Every pushed image has its SBOM: valid CycloneDX 1.6, for its pushed digest, naming each image it embeds: those
    # its save step saved, with where they came from, and those its parent's registry/ brought, by name only.
    assert set(sboms) == {f"{t['name']}:{t['version']}-{t['arch']}" for t in plan["build"]}
    carried = 0
    for image, (out, text) in sboms.items():
        assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None, image
        bom = json.loads(text)
        assert bom["metadata"]["component"]["version"] == out["digest"]
        nested = {f"{c['name']}:{c['purl'].rsplit('tag=', 1)[1]}@{c['version']}" for c in bom["components"]
                  if c["type"] == "container"}  # fmt: skip
        saved = set(out.get("images", "").split())
        inherited = {line.split("/", 1)[1] for o, _ in sboms.values() if o["image"].endswith(image[-6:])
                     for line in o.get("images", "").split() if line not in saved}  # fmt: skip
        assert saved <= nested and nested - saved <= inherited, image
        carried += len(nested - saved)
    assert carried == 6  # openebs carries calico's three images, on each arch
