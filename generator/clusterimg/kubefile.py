"""What the generator reads from a Kubefile: the images it builds FROM and the commands its CMD runs; and, for a build
leg, the Kubefile rewritten to build FROM its arch's image of each in-tree parent (standard library only)."""

from __future__ import annotations

import json
import os
import re
import sys
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
    for _, line in _logical_lines(text):
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


def rewrite(text: str, bases: dict[str, str]) -> str:
    """`text` with the image of each FROM that is a key of `bases` replaced by its value; every other line as it was.
    A FROM split over several lines becomes one."""
    out = []
    for raw, line in _logical_lines(text, keep=True):
        m = _INSTRUCTION.match(line)
        if m and m.group(1).upper() == "FROM":
            words = m.group(2).split()
            image = next((i for i, w in enumerate(words) if not w.startswith("--")), None)
            if image is not None and words[image] in bases:
                words[image] = bases[words[image]]
                raw = [f"{m.group(1)} {' '.join(words)}"]
        out.extend(raw)
    return "".join(line + "\n" for line in out)


def _logical_lines(text: str, keep: bool = False):
    """(raw lines, logical line) for each instruction, `\\` continuations joined; comments only when `keep`."""
    buf, raw = "", []
    for line in text.splitlines():
        stripped = line.strip()
        if not buf and stripped.startswith("#"):
            if keep:
                yield [line], ""
            continue
        raw.append(line)
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        yield raw, buf + stripped
        buf, raw = "", []
    if raw:
        yield raw, buf


def main(argv: list[str]) -> int:
    """kubefile FILE ARCH: FILE with each parent in CIMG_PARENTS (`NAME=IMAGE:VERSION [DIGEST [built]]` lines, NAME as
    FILE writes it) built FROM IMAGE:VERSION-ARCH, on stdout."""
    path, arch = argv
    bases = {}
    for line in os.environ.get("CIMG_PARENTS", "").splitlines():
        name, eq, rest = line.split(" ", 1)[0].partition("=")
        if eq and name and rest:
            bases[name] = f"{rest}-{arch}"
    with open(path, encoding="utf-8") as fh:
        sys.stdout.write(rewrite(fh.read(), bases))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
