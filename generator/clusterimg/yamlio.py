"""The one YAML loader: YAML 1.2 booleans, so `on:` stays the string "on"."""

import re

import yaml


class Loader(yaml.SafeLoader):
    pass


# Drop YAML 1.1's yes/no/on/off booleans; keep true/false.
Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load(text: str):
    return yaml.load(text, Loader=Loader)  # noqa: S506 - Loader derives from SafeLoader
