"""Sharding below GitHub's 256-job matrix limit, at the boundaries and at 1,000 app-versions."""

import json
from dataclasses import replace

import pytest

from clusterimg.errors import UserError
from clusterimg.layout import MATRIX_LIMIT, Layout
from clusterimg.model import Arch, Manifest, Plan, Target
from helpers import big_tree


def plan_of(n: int, arches=(Arch.AMD64,)) -> Plan:
    build, manifest = [], []
    for i in range(n):
        for arch in arches:
            build.append(Target(app=f"app{i}", version="v1", arch=arch, runner=("r",), context=f"a/app{i}/v1",
                                name=f"r/ns/app{i}", build_args=""))
        manifest.append(Manifest(app=f"app{i}", version="v1", name=f"r/ns/app{i}", arches=tuple(arches)))
    return Plan(build=tuple(build), manifest=tuple(manifest))


@pytest.mark.parametrize("n, sizes", [(255, [255]), (256, [256]), (257, [256, 1])])
def test_matrix_never_holds_more_than_256_jobs_at_the_boundaries(n, sizes):
    layout = Layout(arches=(Arch.AMD64,), build_shards=2, manifest_shards=2)
    matrices = layout.matrices(plan_of(n))
    assert [len(matrices[k]) for k in ("build_amd64_1", "build_amd64_2")] == sizes + [0] * (2 - len(sizes))
    assert [len(matrices[k]) for k in ("manifest_1", "manifest_2")] == sizes + [0] * (2 - len(sizes))
    assert sum(len(v) for k, v in matrices.items() if k.startswith("build")) == n


def test_targets_that_outgrow_the_generated_jobs_fail_naming_the_regenerate_command():
    layout = Layout(arches=(Arch.AMD64,), build_shards=1, manifest_shards=1)
    layout.matrices(plan_of(256))
    with pytest.raises(UserError, match=r"257 amd64 build\(s\) in stage 0 outgrow .*clusterimg-gen workflows"):
        layout.matrices(plan_of(257))


@pytest.mark.parametrize("n, shards", [(1, 1), (204, 1), (205, 2), (255, 2), (256, 2), (257, 2), (1000, 5)])
def test_shard_count_comes_from_tree_size_with_headroom(n, shards):
    layout = Layout.sized_for(plan_of(n, (Arch.AMD64, Arch.ARM64)), (Arch.AMD64, Arch.ARM64))
    assert layout.build_shards == shards
    matrices = layout.matrices(plan_of(n, (Arch.AMD64, Arch.ARM64)))
    assert all(len(v) <= MATRIX_LIMIT for v in matrices.values())
    assert sum(len(v) for k, v in matrices.items() if k.startswith("build_arm64")) == n


def test_plan_for_a_1000_version_tree_fills_every_generated_shard_within_the_limit(cli, tmp_path):
    repo = big_tree(tmp_path / "repo", 1000)
    assert cli("workflows", "--repo", repo).code == 0
    text = (repo / ".github/workflows/clusterimage.yml").read_text()
    for job in ("build-amd64-1:", "build-amd64-5:", "build-arm64-5:", "manifest-5:"):
        assert f"\n  {job}\n" in text
    assert "build-amd64-6:" not in text and "build-shards: 5" in text
    out = cli("plan", "--repo", repo, "--all", "--format", "github", "--build-shards", "5", "--manifest-shards", "5")
    matrices = json.loads(out.out.partition("=")[2])
    assert [len(matrices[f"build_amd64_{i}"]) for i in range(1, 6)] == [256, 256, 256, 232, 0]
    assert len(out.out.encode()) < 1_000_000  # GitHub caps a job's outputs at 1 MB
    short = cli("plan", "--repo", repo, "--all", "--format", "github", "--build-shards", "3")
    assert short.code == 2 and "regenerate it with: clusterimg-gen workflows" in short.err


def test_a_matrices_output_over_githubs_1_mb_job_output_limit_fails_naming_the_limit():
    from clusterimg import report

    plan = plan_of(2000, (Arch.AMD64, Arch.ARM64))
    layout = Layout.sized_for(plan, (Arch.AMD64, Arch.ARM64))
    long = Plan(build=tuple(replace(t, inputs="f" * 64) for t in plan.build), manifest=plan.manifest)
    assert len(report.plan(plan, "github", layout)) * 2 < report.OUTPUT_LIMIT
    with pytest.raises(UserError, match=r"\(UTF-16\), over its limit of 1000000 bytes for a job's outputs"):
        report.plan(long, "github", layout)
