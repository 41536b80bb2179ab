"""YAML for configuration that may come from a request: safe, strict and bounded.

Every YAML document watchkeeper reads (settings, model configs, rule and alerting files, rule
sets over the API) goes through :func:`load_yaml`, PyYAML's safe loader with two rules more:

- a key repeated in one mapping is an error naming the key and its line (YAML would silently
  keep the last one, so a rule's second ``condition:`` would replace the first);
- at most :data:`MAX_NODES` nodes once every alias is expanded: a "billion laughs" document
  (90 aliases, nested, that expand to a billion items when walked) is refused before anything
  walks it.

Both raise :class:`yaml.YAMLError` subclasses, so callers report them as invalid YAML.

>>> load_yaml("a: 1\\nb: [x, y]")
{'a': 1, 'b': ['x', 'y']}
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError

__all__ = ["MAX_NODES", "load_yaml"]

MAX_NODES = 1_000_000


def _check_expansion(root: yaml.Node) -> None:
    """Count the nodes of ``root`` with aliases expanded (a shared node counts each time it is
    referenced), each node's size computed once."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(key) + size(value) for key, value in node.value)
        sizes[id(node)] = total = min(total, MAX_NODES + 1)
        return total

    if size(root) > MAX_NODES:
        raise ComposerError(
            None,
            None,
            f"more than {MAX_NODES:,} values once its aliases are expanded",
            root.start_mark,
        )


class _StrictLoader(yaml.SafeLoader):
    def get_single_node(self) -> Any:
        node = super().get_single_node()
        if node is not None:
            _check_expansion(node)
        return node

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    repeated = key in seen
                except TypeError:
                    continue  # an unhashable key: the base class reports it
                if repeated:
                    raise ConstructorError(
                        "while reading a mapping",
                        node.start_mark,
                        f"the key {key!r} appears twice",
                        key_node.start_mark,
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str | bytes) -> Any:
    """Parse one YAML (or JSON) document with the rules above."""
    return yaml.load(text, Loader=_StrictLoader)
