"""Third-party actions the generated workflows use, pinned to full commit SHAs (refreshed by `lock`)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Pin:
    action: str
    tag: str
    sha: str
    runtime: str  # the node runtime of that release; node20 is deprecated on GitHub's runners

    @property
    def uses(self) -> str:
        return f"{self.action}@{self.sha} # {self.tag}"


DEFAULTS = {
    "actions/checkout": Pin("actions/checkout", "v6.0.2", "de0fac2e4500dabe0009e67214ff5f5447ce83dd", "node24"),
}
