"""The README documents what ships, and the action's defaults match the generator's."""

import pytest

from clusterimg import model, yamlio
from helpers import ROOT

ACTIONS = ["action.yml", "manifest/action.yml", "plan/action.yml", "lock/action.yml", "comment/action.yml",
           "mirror/action.yml"]


@pytest.mark.parametrize("path", ACTIONS)
def test_readme_lists_every_input_and_output_of_each_action(path):
    readme = (ROOT / "README.md").read_text()
    section = readme.split(f"### `{path}`", 1)[1].split("###", 1)[0]
    action = yamlio.load((ROOT / path).read_text())
    for name in [*action["inputs"], *action["outputs"]]:
        assert f"| `{name}` |" in section, f"{path}: {name} missing from README"


def test_action_tool_defaults_match_the_generator():
    action = yamlio.load((ROOT / "action.yml").read_text())["inputs"]
    assert action["sealos-version"]["default"] == model.SEALOS_VERSION
    assert action["buildah-version"]["default"] == model.BUILDAH_VERSION
    manifest = yamlio.load((ROOT / "manifest/action.yml").read_text())["inputs"]
    assert manifest["buildah-version"]["default"] == model.BUILDAH_VERSION
