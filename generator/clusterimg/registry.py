"""Registry lookups through skopeo, with bounded retries and a bounded number in flight."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from .errors import UserError

PARALLEL = 8
NOT_FOUND = ("manifest unknown", "not found", "name unknown", "no such")


def labels(refs: list[str], *, tls_verify: bool, retries: int = 3) -> dict[str, dict | None]:
    """ref → its config labels, or None when the registry does not have it (or could not be asked)."""
    with ThreadPoolExecutor(PARALLEL) as pool:
        return dict(zip(refs, pool.map(lambda r: _labels(r, tls_verify, retries), refs)))


def _labels(ref: str, tls_verify: bool, retries: int) -> dict | None:
    cmd = ["skopeo", "inspect", f"--tls-verify={'true' if tls_verify else 'false'}", f"docker://{ref}"]
    for attempt in range(retries):
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        except FileNotFoundError:
            raise UserError("skopeo: not found on PATH; skipping unchanged images needs it") from None
        except subprocess.TimeoutExpired:
            proc = None
        if proc is not None and proc.returncode == 0:
            return json.loads(proc.stdout).get("Labels") or {}
        err = proc.stderr.lower() if proc is not None else "timed out"
        if any(word in err for word in NOT_FOUND):
            return None
        if attempt + 1 < retries:
            time.sleep(min(2**attempt, 10))
    print(f"warning: could not inspect {ref} ({err.strip().splitlines()[-1] if err.strip() else 'no answer'}); "
          "building it", file=sys.stderr)
    return None
