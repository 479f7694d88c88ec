"""Where the action's own files are: inside the wheel, or at the root of a source checkout."""

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def action_root() -> Path:
    """The directory that holds action.yml, scripts/ and templates/."""
    bundled = _PKG / "_action"
    return bundled if bundled.is_dir() else _PKG.parents[1]


def scripts_dir() -> Path:
    return action_root() / "scripts"


def templates_dir() -> Path:
    return action_root() / "templates"
