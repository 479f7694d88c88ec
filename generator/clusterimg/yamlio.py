"""The one YAML loader: YAML 1.2 booleans, so `on:` stays the string "on"; our own files read scalars as written.

Aliases may repeat a node, but not grow a document without bound ("billion laughs") nor refer to themselves.
"""

import re

import yaml
from yaml.composer import ComposerError

BOOL = "tag:yaml.org,2002:bool"
# Nodes that aliases may add to a document: far above any real reuse, small enough to walk in about a second.
ALIAS_NODES = 1_000_000


class Loader(yaml.SafeLoader):
    """For YAML that other tools also read (chart values): their numbers stay numbers."""

    def compose_document(self):
        node = super().compose_document()
        _expanded(node, {}, set())
        return node


def _expanded(node, sizes: dict[int, int], open_: set[int]) -> int:
    """Nodes under `node` with every alias expanded; raises once aliases add more than ALIAS_NODES."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_:
        raise ComposerError(None, None, "an alias refers to a node that contains it", node.start_mark)
    open_.add(key)
    if isinstance(node, yaml.SequenceNode):
        children = node.value
    elif isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    else:
        children = []
    total = 1 + sum(_expanded(child, sizes, open_) for child in children)
    open_.discard(key)
    sizes[key] = total
    # len(sizes) counts the nodes written so far, so only what aliases add counts against the limit.
    if total > len(sizes) + ALIAS_NODES:
        problem = f"aliases expand the document by more than {ALIAS_NODES} nodes"
        raise ComposerError(None, None, problem, node.start_mark)
    return total


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
