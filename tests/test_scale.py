"""Sharding below GitHub's 256-job matrix limit, at the boundaries and at 1,000 app-versions."""

import json
from dataclasses import replace

import pytest

from clusterimg.errors import UserError
from clusterimg.layout import HEADROOM, MATRIX_LIMIT, OUTPUT_LIMIT, Layout, encode, group_of, output_size, split
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


@pytest.mark.parametrize("n, groups, shards", [
    (1, 1, 1), (204, 1, 1), (205, 1, 2), (255, 1, 2), (256, 1, 2), (257, 1, 2), (1000, 2, 3),
])
def test_plan_groups_and_shards_come_from_tree_size_with_headroom(n, groups, shards):
    layout = Layout.sized_for(plan_of(n, (Arch.AMD64, Arch.ARM64)), (Arch.AMD64, Arch.ARM64))
    assert (layout.groups, layout.build_shards) == (groups, shards)
    parts = split(plan_of(n, (Arch.AMD64, Arch.ARM64)), layout.groups)
    matrices = [layout.matrices(part, g) for g, part in enumerate(parts)]
    assert all(len(v) <= MATRIX_LIMIT for m in matrices for v in m.values())
    assert sum(len(v) for m in matrices for k, v in m.items() if k.startswith("build_arm64")) == n


def full_length(plan: Plan) -> Plan:
    """The plan as `plan` emits it: every input digest and commit time at its real length."""
    return Plan(build=tuple(replace(t, inputs=f"{i:064x}", time=1_700_000_000 + i) for i, t in enumerate(plan.build)),
                manifest=tuple(replace(m, inputs=tuple("f" * 64 for _ in m.arches)) for m in plan.manifest))


def test_20000_app_versions_fit_githubs_1_mb_job_output_limit_in_each_plan_job():
    plan = plan_of(20000, (Arch.AMD64, Arch.ARM64))
    layout = Layout.sized_for(plan, (Arch.AMD64, Arch.ARM64))
    sizes, seen = [], []
    for g, part in enumerate(split(full_length(plan), layout.groups)):
        matrices = layout.matrices(part, g)
        assert set(matrices) == {j.key for j in layout.jobs(g)}
        assert all(len(v) <= MATRIX_LIMIT for v in matrices.values())
        sizes.append(output_size(encode(matrices)))
        seen += [e["app"] for k, v in matrices.items() if k.startswith("manifest") for e in v]
    assert sorted(seen) == sorted(m.app for m in plan.manifest)  # each app-version in exactly one group
    assert max(sizes) * HEADROOM <= OUTPUT_LIMIT
    assert sum(sizes) > 10 * OUTPUT_LIMIT  # what one plan job would have had to emit


def family_plan(children: int, others: int) -> Plan:
    """base:v1 with `children` app-versions built FROM it, and `others` app-versions FROM scratch."""
    plan = plan_of(others, (Arch.AMD64,))
    base = Target(app="base", version="v1", arch=Arch.AMD64, runner=("r",), context="a/base/v1", name="r/ns/base",
                  build_args="")
    kids = [Target(app=f"kid{i}", version="v1", arch=Arch.AMD64, runner=("r",), context=f"a/kid{i}/v1",
                   name=f"r/ns/kid{i}", build_args="", stage=1, parents=(("r/ns/base:v1", "r/ns/base:v1"),))
            for i in range(children)]
    manifests = [Manifest(app=t.app, version="v1", name=t.name, arches=(Arch.AMD64,), stage=t.stage)
                 for t in (base, *kids)]
    return Plan(build=(base, *kids, *plan.build), manifest=(*manifests, *plan.manifest))


def test_a_plan_group_holds_whole_families_so_a_child_and_its_parent_plan_together():
    plan = family_plan(40, 3000)
    layout = Layout.sized_for(plan, (Arch.AMD64,))
    assert layout.groups > 1 and layout.stages == 2
    group = group_of(plan, layout.groups)
    assert {group[(f"kid{i}", "v1")] for i in range(40)} == {group[("base", "v1")]}
    assert len(set(group.values())) == layout.groups


def test_a_family_too_large_for_one_plan_job_fails_workflows_naming_the_limit():
    with pytest.raises(UserError, match=r"over GitHub's limit of 1000000 bytes for a job's outputs"):
        Layout.sized_for(family_plan(3000, 0), (Arch.AMD64,))


def test_plan_for_a_1000_version_tree_splits_into_plan_jobs_each_within_the_limit(cli, tmp_path):
    repo = big_tree(tmp_path / "repo", 1000)
    assert cli("workflows", "--repo", repo).code == 0
    text = (repo / ".github/workflows/clusterimage.yml").read_text()
    for job in ("plan-g1", "plan-g2", "build-amd64-g1-1", "build-arm64-g2-3", "manifest-g2-3"):
        assert f"\n  {job}:\n" in text
    assert "plan:" not in text and "build-amd64-g1-4:" not in text and "groups: 2" in text
    assert "needs: [\"plan-g2\", \"build-amd64-g2-1\"" in text
    apps = []
    for group in ("1", "2"):
        out = cli("plan", "--repo", repo, "--all", "--format", "github", "--build-shards", "3", "--manifest-shards",
                  "3", "--groups", "2", "--group", group)
        assert out.code == 0, out.err
        assert output_size(out.out.partition("=")[2]) < OUTPUT_LIMIT
        matrices = json.loads(out.out.partition("=")[2])
        assert set(matrices) == {f"{kind}_g{group}_{i}" for kind in ("build_amd64", "build_arm64", "manifest")
                                 for i in (1, 2, 3)}
        apps += [(e["app"], e["version"]) for k, v in matrices.items() if k.startswith("manifest") for e in v]
    assert len(apps) == len(set(apps)) == 1000
    short = cli("plan", "--repo", repo, "--all", "--format", "github", "--build-shards", "1", "--groups", "2")
    assert short.code == 2 and "regenerate it with: clusterimg-gen workflows" in short.err


def test_a_matrices_output_over_githubs_1_mb_job_output_limit_fails_naming_the_limit():
    from clusterimg import report

    plan = plan_of(2000, (Arch.AMD64, Arch.ARM64))
    layout = Layout(arches=(Arch.AMD64, Arch.ARM64), build_shards=8, manifest_shards=8)
    assert output_size(report.plan(plan, "github", layout)) < OUTPUT_LIMIT
    with pytest.raises(UserError, match=r"\(UTF-16\), over its limit of 1000000 bytes for a job's outputs"):
        report.plan(full_length(plan), "github", layout)
