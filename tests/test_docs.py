"""The README documents what ships, and the action's defaults match the generator's."""

import pytest

from clusterimg import defaults, yamlio
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


def test_every_action_input_default_is_the_data_files():
    wanted = defaults.action_inputs()
    seen = set()
    for path in ACTIONS:
        for name, spec in yamlio.load((ROOT / path).read_text())["inputs"].items():
            if name in wanted:
                seen.add(name)
                assert spec.get("default") == wanted[name], f"{path}: input {name}"
    assert seen == set(wanted), "a default in defaults.json that no action input takes"
