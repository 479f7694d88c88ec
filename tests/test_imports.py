"""Imports flow one way: import-linter holds the package to the layers contract in pyproject.toml."""

import os
import shutil
import subprocess

from helpers import ROOT, tool


def lint_imports(root, package):
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(package)}
    return subprocess.run([tool("lint-imports"), "--config", str(root / "pyproject.toml"), "--no-cache"],
                          capture_output=True, text=True, cwd=root, env=env)


def test_the_package_keeps_its_layers():
    proc = lint_imports(ROOT, ROOT / "generator")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 kept, 0 broken" in proc.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    shutil.copy2(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(ROOT / "generator/clusterimg", tmp_path / "generator/clusterimg",
                    ignore=shutil.ignore_patterns("__pycache__"))
    model = tmp_path / "generator/clusterimg/model.py"
    model.write_text(model.read_text() + "\nfrom . import render  # noqa: E402,F401\n")
    proc = lint_imports(tmp_path, tmp_path / "generator")
    assert proc.returncode != 0
    assert "clusterimg.model -> clusterimg.render" in proc.stdout
