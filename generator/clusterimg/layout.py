"""How plan targets map onto workflow jobs: per stage, per arch, and sharded below GitHub's 256-job matrix limit."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass

from .errors import UserError
from .model import Arch, Plan

MATRIX_LIMIT = 256
HEADROOM = 1.25  # room for the tree to grow before the workflow must be regenerated


@dataclass(frozen=True, kw_only=True)
class Job:
    id: str  # workflow job id, e.g. build-amd64, build-s1-arm64-2, manifest
    kind: str  # build | manifest
    stage: int
    arch: Arch | None
    shard: int

    @property
    def key(self) -> str:
        """Its key in the plan's `matrices` object (a valid expression property name)."""
        return self.id.replace("-", "_")


@dataclass(frozen=True, kw_only=True)
class Layout:
    arches: tuple[Arch, ...]
    build_shards: int = 1
    manifest_shards: int = 1
    stages: int = 1

    @classmethod
    def sized_for(cls, plan: Plan, arches: tuple[Arch, ...]) -> Layout:
        per_arch = Counter((t.stage, t.arch) for t in plan.build)
        per_stage = Counter(m.stage for m in plan.manifest)
        return cls(
            arches=arches,
            build_shards=_shards(max(per_arch.values(), default=0)),
            manifest_shards=_shards(max(per_stage.values(), default=0)),
            stages=max(_stages(plan), default=0) + 1,
        )

    def _id(self, kind: str, stage: int, arch: Arch | None, shard: int, shards: int) -> str:
        parts = [kind]
        if self.stages > 1:
            parts.append(f"s{stage}")
        if arch is not None:
            parts.append(arch.value)
        if shards > 1:
            parts.append(str(shard + 1))
        return "-".join(parts)

    def build_jobs(self, stage: int) -> list[Job]:
        return [
            Job(id=self._id("build", stage, a, i, self.build_shards), kind="build", stage=stage, arch=a, shard=i)
            for a in self.arches
            for i in range(self.build_shards)
        ]

    def manifest_jobs(self, stage: int) -> list[Job]:
        return [
            Job(id=self._id("manifest", stage, None, i, self.manifest_shards), kind="manifest", stage=stage, arch=None,
                shard=i)
            for i in range(self.manifest_shards)
        ]

    def jobs(self) -> list[Job]:
        return [j for s in range(self.stages) for j in (*self.build_jobs(s), *self.manifest_jobs(s))]

    def matrices(self, plan: Plan) -> dict[str, list[dict]]:
        """Compact matrix entries per job key; a plan that outgrows the generated jobs is a user error."""
        builds: dict[tuple[int, Arch], list[dict]] = defaultdict(list)
        for t in plan.build:
            builds[(t.stage, t.arch)].append(_build_entry(t))
        manifests: dict[int, list[dict]] = defaultdict(list)
        for m in plan.manifest:
            manifests[m.stage].append(_manifest_entry(m))
        out: dict[str, list[dict]] = {j.key: [] for j in self.jobs()}
        for stage in range(max(_stages(plan), default=0) + 1):
            for arch in self.arches:
                entries = builds[(stage, arch)]
                self._fill(out, self.build_jobs(stage) if stage < self.stages else [], arch, entries,
                           f"{len(entries)} {arch} build(s) in stage {stage}")
            entries = manifests[stage]
            self._fill(out, self.manifest_jobs(stage) if stage < self.stages else [], None, entries,
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


def _stages(plan: Plan) -> set[int]:
    return {t.stage for t in plan.build} | {m.stage for m in plan.manifest}


def _shards(count: int) -> int:
    return max(1, math.ceil(count * HEADROOM / MATRIX_LIMIT))


def _build_entry(t) -> dict:
    """Only what the workflow cannot derive: defaults are left out to keep job outputs small."""
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
        entry["parents"] = "\n".join(f"{written}={base}" for written, base in t.parents)
    return entry


def _manifest_entry(m) -> dict:
    entry = {"app": m.app, "version": m.version, "arches": " ".join(a.value for a in m.arches)}
    if m.inputs:
        entry["inputs"] = " ".join(f"{a.value}={d}" for a, d in zip(m.arches, m.inputs))
    return entry
