import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "generator"))

from clusterimg.cli import main  # noqa: E402

GOLDEN = Path(__file__).parent / "golden"
KUBEFILE = 'FROM scratch\nCOPY manifests ./manifests\nCMD ["kubectl apply -f manifests"]\n'


class Result:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def cli(capsys):
    """Run clusterimg-gen in-process, as a user would, and capture exit code and output."""

    def run(*args: str) -> Result:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def tree(tmp_path):
    """A labring-shaped repo in tmp_path: tree({path: text}) adds files and returns the root."""

    def make(files: dict[str, str] | None = None, config: str | None = "repository: acme\n") -> Path:
        repo = tmp_path / "repo"
        repo.mkdir(exist_ok=True)
        if config is not None:
            (repo / "clusterimage.yaml").write_text(config)
        write_tree(repo, files if files is not None else {"applications/calico/v3.26.1/Kubefile": KUBEFILE})
        return repo

    return make


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        check=True, capture_output=True, text=True,
    ).stdout.strip()


def copy_scenario(name: str, dest: Path) -> tuple[Path, list[str]]:
    src = GOLDEN / name
    repo = dest / name
    shutil.copytree(src / "repo", repo)
    args_file = src / "args"
    return repo, args_file.read_text().split() if args_file.exists() else []
