import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "generator"))

# The tools tests/setup.sh installs live beside this interpreter (the venv's bin): find them there first, whatever
# PATH the caller had, and never a copy that a hand install left elsewhere on PATH.
os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", os.defpath)])

from clusterimg.cli import main  # noqa: E402
from helpers import KUBEFILE, write_tree  # noqa: E402


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
