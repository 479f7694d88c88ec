"""Present a Plan as JSON, text, or GitHub step outputs."""

from __future__ import annotations

import json
from collections.abc import Sequence

from .errors import UserError
from .layout import OUTPUT_LIMIT, Layout, encode, output_size
from .model import Plan


def plan_data(plan: Plan) -> dict:
    return {
        "build": [
            {
                "app": t.app, "version": t.version, "arch": t.arch.value,
                "runner": t.runner[0] if len(t.runner) == 1 else list(t.runner),
                "context": t.context, "name": t.name, "image": t.image, "build_args": t.build_args,
                "stage": t.stage, "inputs": t.inputs, "time": t.time,
            }
            for t in plan.build
        ],
        "manifest": [
            {"app": m.app, "version": m.version, "name": m.name, "image": m.image,
             "arches": [a.value for a in m.arches], "stage": m.stage}
            for m in plan.manifest
        ],
    }


def plan(plan: Plan, fmt: str, layout: Layout, accounting: Sequence[str] = (), group: int = 0) -> str:
    """`group` (github format): the plan group whose matrices this plan job emits; `plan` holds only its targets."""
    if fmt == "github":
        value = encode(layout.matrices(plan, group))
        size = output_size(value)
        if size > OUTPUT_LIMIT:
            raise UserError(
                f"plan: the matrices output is {size} bytes as GitHub counts them (UTF-16), over its limit of "
                f"{OUTPUT_LIMIT} bytes for a job's outputs; regenerate the workflow for more plan jobs, or plan fewer "
                "app-versions per run (--app, a schedule per app)"
            )
        return "matrices=" + value + "\n"
    data = plan_data(plan)
    if fmt == "json":
        # One entry per line: readable, diffable, and json's C encoder (indent= falls back to pure Python).
        parts = [
            f'"{key}": [' + ",".join("\n  " + json.dumps(e, sort_keys=True) for e in data[key]) + ("\n]" if data[key] else "]")
            for key in sorted(data)
        ]
        return "{" + ",\n".join(parts) + "}\n"
    lines = [f"{len(data['build'])} build(s), {len(data['manifest'])} manifest list(s)"]
    lines += [f"  build    {t['image']}  on {t['runner']}  from {t['context']}" for t in data["build"]]
    lines += [f"  manifest {m['image']}  [{', '.join(m['arches'])}]" for m in data["manifest"]]
    lines += [f"  {line}" for line in accounting]
    return "\n".join(lines) + "\n"
