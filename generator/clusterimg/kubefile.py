"""What the generator reads from a Kubefile: the images it builds FROM and the commands its CMD runs."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

_INSTRUCTION = re.compile(r"^\s*([A-Za-z]+)\s+(.*)$")


@dataclass(frozen=True)
class Kubefile:
    froms: tuple[str, ...]  # image refs, in order; earlier stage names (FROM x AS name) are left out
    cmd: tuple[str, ...]  # each command of the last CMD; sealos runs the elements of the JSON form one by one


def parse(text: str) -> Kubefile:
    froms: list[str] = []
    stages: set[str] = set()
    cmd: tuple[str, ...] = ()
    for line in _logical_lines(text):
        m = _INSTRUCTION.match(line)
        if not m:
            continue
        word, rest = m.group(1).upper(), m.group(2).strip()
        if word == "FROM":
            parts = [p for p in rest.split() if not p.startswith("--")]
            if not parts:
                continue
            if parts[0].lower() not in stages and parts[0] != "scratch":
                froms.append(parts[0])
            if len(parts) >= 3 and parts[1].lower() == "as":
                stages.add(parts[2].lower())
        elif word == "CMD":
            cmd = _commands(rest)
    return Kubefile(froms=tuple(froms), cmd=cmd)


def _commands(rest: str) -> tuple[str, ...]:
    if rest.startswith("["):
        try:
            value = json.loads(rest)
        except json.JSONDecodeError:
            return (rest,)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(" ".join(v.split()) for v in value)
    return (" ".join(rest.split()),)


def _logical_lines(text: str):
    buf = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not buf and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        yield buf + stripped
        buf = ""
    if buf:
        yield buf
