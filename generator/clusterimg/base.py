"""The FROM bases of a build file that the tree does not build, each with the digest it resolves to for one arch now:
the build labels the image with them beside its embedded images, so a scheduled plan rebuilds it when one moves.
Standard library only, like clusterimg.save, whose registry client and rules it uses.

    python3 -m clusterimg.base FILE ARCH OWN-REGISTRY PARENTS < AUTH-FILE

PARENTS is the tree's parents, one `ref=image` a line (what build.sh gets); they, scratch and stage names are left
out. Prints one `ref@digest` line per base; a base that cannot be resolved is left out with a warning, so that an
unreachable registry never fails a build here (the build's own pull says what is wrong).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .images import parse_ref
from .kubefile import parse
from .save import Final, Remote, Saver, Transient, auths_from, settings_from_env


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print("usage: python3 -m clusterimg.base FILE ARCH OWN-REGISTRY PARENTS < AUTH-FILE", file=sys.stderr)
        return 2
    file, arch, own, parents = Path(argv[0]), argv[1], argv[2], argv[3]
    tree = {line.partition("=")[0].strip() for line in parents.splitlines()}
    saver = Saver(Path(os.devnull), settings_from_env(arch, own), auths_from(sys.stdin.read()))
    for base in parse(file.read_text()).froms:
        ref = parse_ref(base)
        if base in tree or "$" in base or ref is None:
            continue
        try:
            digest, _ = Remote(saver, str(ref)).manifest(arch)
        except (Final, Transient, OSError, ValueError) as exc:
            print(f"warning: could not resolve the base {ref} for linux/{arch} ({exc}); a re-push of it will not "
                  f"trigger a scheduled rebuild of this image", file=sys.stderr)  # fmt: skip
            continue
        print(f"{ref}@{digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
