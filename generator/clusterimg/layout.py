"""How plan targets map onto workflow jobs: per plan group, per stage, per arch, and sharded below GitHub's 256-job
matrix limit; each plan group's matrices are one plan job's output, kept below GitHub's 1 MB limit on a job's outputs."""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, replace

from .errors import UserError
from .model import Arch, Plan

MATRIX_LIMIT = 256
OUTPUT_LIMIT = 1_000_000  # GitHub's limit on the outputs of one job together: 1 MB, sized as UTF-16
HEADROOM = 1.25  # room for the tree to grow before the workflow must be regenerated
# What `workflows` sizes with: every input digest and commit time at its full length.
SAMPLE_DIGEST = "0" * 64
SAMPLE_TIME = 9_999_999_999


@dataclass(frozen=True, kw_only=True)
class Job:
    id: str  # workflow job id, e.g. build-amd64, build-s1-arm64-g2-3, manifest
    kind: str  # build | manifest
    stage: int
    arch: Arch | None
    shard: int
    group: int = 0
    plan: str = "plan"  # the plan job whose output holds its matrix

    @property
    def key(self) -> str:
        """Its key in the plan's `matrices` object (a valid expression property name)."""
        return self.id.replace("-", "_")


@dataclass(frozen=True, kw_only=True)
class Layout:
    arches: tuple[Arch, ...]
    build_shards: int = 1  # per group, stage and arch
    manifest_shards: int = 1  # per group and stage
    stages: int = 1
    groups: int = 1  # plan jobs; each plans the whole tree and emits one group's matrices

    @classmethod
    def sized_for(cls, plan: Plan, arches: tuple[Arch, ...]) -> Layout:
        """The fewest plan groups whose outputs, with every digest at full length, stay below the limit with
        headroom; then enough shards in each group for its largest stage and arch."""
        sample = Plan(
            build=tuple(replace(t, inputs=SAMPLE_DIGEST, time=SAMPLE_TIME,
                                parent_inputs=tuple(SAMPLE_DIGEST for _ in t.parents)) for t in plan.build),
            manifest=tuple(replace(m, inputs=tuple(SAMPLE_DIGEST for _ in m.arches)) for m in plan.manifest),
        )
        built = {t.image for t in sample.build}
        entries = [_build_entry(t, built) for t in sample.build] + [_manifest_entry(m) for m in sample.manifest]
        groups = max(1, math.ceil(output_size(encode({"": entries})) * HEADROOM / OUTPUT_LIMIT))
        stages = max(_stages(plan), default=0) + 1
        families = len(set(_families(plan).values()))
        while True:
            parts = split(sample, groups)
            per_arch = Counter((g, t.stage, t.arch) for g, part in enumerate(parts) for t in part.build)
            per_stage = Counter((g, m.stage) for g, part in enumerate(parts) for m in part.manifest)
            layout = cls(arches=arches, stages=stages, groups=groups,
                         build_shards=_shards(max(per_arch.values(), default=0)),
                         manifest_shards=_shards(max(per_stage.values(), default=0)))
            size = max(output_size(encode(layout.matrices(part, g))) for g, part in enumerate(parts))
            if size * HEADROOM <= OUTPUT_LIMIT:
                return layout
            if groups >= families:
                raise UserError(
                    f"workflows: one family of app-versions built FROM each other needs a matrices output of {size} "
                    f"bytes (UTF-16), over GitHub's limit of {OUTPUT_LIMIT} bytes for a job's outputs with "
                    f"{HEADROOM}x headroom; expected a family that one plan job can hold"
                )
            groups = min(families, max(groups + 1, math.ceil(groups * size * HEADROOM / OUTPUT_LIMIT)))

    @property
    def plans(self) -> list[str]:
        """The plan job ids, one per group."""
        return ["plan"] if self.groups == 1 else [f"plan-g{g + 1}" for g in range(self.groups)]

    def _id(self, kind: str, stage: int, arch: Arch | None, group: int, shard: int, shards: int) -> str:
        parts = [kind]
        if self.stages > 1:
            parts.append(f"s{stage}")
        if arch is not None:
            parts.append(arch.value)
        if self.groups > 1:
            parts.append(f"g{group + 1}")
        if shards > 1:
            parts.append(str(shard + 1))
        return "-".join(parts)

    def build_jobs(self, stage: int, group: int = 0) -> list[Job]:
        return [
            Job(id=self._id("build", stage, a, group, i, self.build_shards), kind="build", stage=stage, arch=a,
                shard=i, group=group, plan=self.plans[group])
            for a in self.arches
            for i in range(self.build_shards)
        ]

    def manifest_jobs(self, stage: int, group: int = 0) -> list[Job]:
        return [
            Job(id=self._id("manifest", stage, None, group, i, self.manifest_shards), kind="manifest", stage=stage,
                arch=None, shard=i, group=group, plan=self.plans[group])
            for i in range(self.manifest_shards)
        ]

    def jobs(self, group: int | None = None) -> list[Job]:
        groups = range(self.groups) if group is None else [group]
        return [j for g in groups for s in range(self.stages)
                for j in (*self.build_jobs(s, g), *self.manifest_jobs(s, g))]

    def matrices(self, plan: Plan, group: int = 0) -> dict[str, list[dict]]:
        """Compact matrix entries per job key of one group, from that group's plan; a plan that outgrows the
        generated jobs is a user error."""
        built = {t.image for t in plan.build}
        builds: dict[tuple[int, Arch], list[dict]] = defaultdict(list)
        for t in plan.build:
            builds[(t.stage, t.arch)].append(_build_entry(t, built))
        manifests: dict[int, list[dict]] = defaultdict(list)
        for m in plan.manifest:
            manifests[m.stage].append(_manifest_entry(m))
        out: dict[str, list[dict]] = {j.key: [] for j in self.jobs(group)}
        for stage in range(max(_stages(plan), default=0) + 1):
            for arch in self.arches:
                entries = builds[(stage, arch)]
                self._fill(out, self.build_jobs(stage, group) if stage < self.stages else [], arch, entries,
                           f"{len(entries)} {arch} build(s) in stage {stage}")
            entries = manifests[stage]
            self._fill(out, self.manifest_jobs(stage, group) if stage < self.stages else [], None, entries,
                       f"{len(entries)} manifest list(s) in stage {stage}")
        return out

    def _fill(self, out, jobs, arch, entries, what) -> None:
        jobs = [j for j in jobs if j.arch == arch]
        if len(entries) > len(jobs) * MATRIX_LIMIT:
            from .header import REGENERATE

            room = f"{len(jobs)} job(s) of at most {MATRIX_LIMIT}" if jobs else "no job for that stage"
            raise UserError(f"plan: {what} outgrow the generated workflow ({room}); regenerate it with: {REGENERATE}")
        for i, job in enumerate(jobs):
            out[job.key] = entries[i * MATRIX_LIMIT:(i + 1) * MATRIX_LIMIT]


def encode(matrices: dict) -> str:
    """The `matrices` output: compact JSON."""
    return json.dumps(matrices, sort_keys=True, separators=(",", ":"))


def output_size(value: str) -> int:
    """Bytes as GitHub sizes outputs: UTF-16."""
    return len(value.encode("utf-16-le"))


def split(plan: Plan, groups: int) -> list[Plan]:
    """The plan of each group."""
    group = group_of(plan, groups)
    return [
        Plan(build=tuple(t for t in plan.build if group[(t.app, t.version)] == g),
             manifest=tuple(m for m in plan.manifest if group[(m.app, m.version)] == g))
        for g in range(groups)
    ]


def group_of(plan: Plan, groups: int) -> dict[tuple[str, str], int]:
    """Each app-version's plan group: app-versions built FROM each other stay together, so a group plans its stages
    and its parents alone; families go in plan order to `groups` groups of about equal size."""
    family = _families(plan)
    sizes = Counter(family.values())
    total = len(plan.manifest)
    start: dict[tuple[str, str], int] = {}
    done = 0
    for m in plan.manifest:
        root = family[(m.app, m.version)]
        if root not in start:
            start[root] = done * groups // max(total, 1)
            done += sizes[root]
    return {key: start[root] for key, root in family.items()}


def _families(plan: Plan) -> dict[tuple[str, str], tuple[str, str]]:
    """Each app-version's family, named by one member: the app-versions linked by in-tree FROMs."""
    keys = {m.image: (m.app, m.version) for m in plan.manifest}
    up = {key: key for key in keys.values()}

    def root(key):
        while up[key] != key:
            up[key] = up[up[key]]
            key = up[key]
        return key

    for t in plan.build:
        for _written, base in t.parents:
            if base in keys:
                up[root(keys[base])] = root((t.app, t.version))
    return {key: root(key) for key in up}


def _stages(plan: Plan) -> set[int]:
    return {t.stage for t in plan.build} | {m.stage for m in plan.manifest}


def _shards(count: int) -> int:
    return max(1, math.ceil(count * HEADROOM / MATRIX_LIMIT))


# How a build job reads back what _build_entry leaves out: the context's directory is the version unless `dir` says.
CONTEXT_DIR = "matrix.dir || matrix.version"


def _build_entry(t, built: set[str]) -> dict:
    """Only what the workflow cannot derive: defaults are left out to keep job outputs small (CONTEXT_DIR reads them
    back)."""
    entry = {"app": t.app, "version": t.version}
    dirname = t.context.rsplit("/", 1)[-1]
    if dirname != t.version:
        entry["dir"] = dirname
    if t.inputs:
        entry["inputs"] = t.inputs
    if t.time is not None:
        entry["time"] = t.time
    if t.build_args:
        entry["build_args"] = t.build_args
    if t.parents:
        entry["parents"] = "\n".join(_parent_line(t, i, built) for i in range(len(t.parents)))
    return entry


def _parent_line(t, i: int, built: set[str]) -> str:
    """`FROM-as-written=parent`, then the input digest its arch image must carry, and `built` when this run builds it
    (else an image published before this tool, without an input label, is taken as it is)."""
    written, base = t.parents[i]
    digest = t.parent_inputs[i] if i < len(t.parent_inputs) else ""
    if not digest:
        return f"{written}={base}"
    return f"{written}={base} {digest}" + (" built" if f"{base}-{t.arch.value}" in built else "")


def _manifest_entry(m) -> dict:
    entry = {"app": m.app, "version": m.version, "arches": " ".join(a.value for a in m.arches)}
    if m.inputs:
        entry["inputs"] = " ".join(f"{a.value}={d}" for a, d in zip(m.arches, m.inputs))
    return entry
