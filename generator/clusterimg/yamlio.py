"""The one YAML loader: YAML 1.2 booleans, so `on:` stays the string "on"; our own files read scalars as written."""

import re

import yaml

BOOL = "tag:yaml.org,2002:bool"


class Loader(yaml.SafeLoader):
    """For YAML that other tools also read (chart values): their numbers stay numbers."""


# Drop YAML 1.1's yes/no/on/off booleans; keep true/false.
Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Loader.add_implicit_resolver(BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


class TextLoader(Loader):
    """For clusterimage.yaml and the lock: nothing there is a number, so `1.10` stays "1.10", not 1.1."""


TextLoader.yaml_implicit_resolvers = {
    first: kept
    for first, resolvers in Loader.yaml_implicit_resolvers.items()
    if (kept := [(tag, rx) for tag, rx in resolvers if tag.rsplit(":", 1)[1] in ("bool", "null", "merge")])
}


def load(text: str):
    return yaml.load(text, Loader=TextLoader)  # noqa: S506 - TextLoader derives from SafeLoader
