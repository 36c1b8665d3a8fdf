"""YAML read with its aliases bounded: a few hundred bytes of nested aliases ("billion laughs")
must not cost every DAG parse seconds.

PyYAML shares an aliased node instead of copying it, but everything that walks the loaded
value afterwards (validation, error text, hashing) walks it expanded. So the node tree is
measured first, each node once, and a spec whose expanded size passes the cap is refused
before any Python value is built from it.
"""
from __future__ import annotations

from typing import Any

import yaml

SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# A large real spec has a few thousand nodes; aliases that multiply past this are an attack or a slip.
MAX_EXPANDED_NODES = 100_000


class AliasBombError(yaml.YAMLError):
    """A document whose aliases expand past MAX_EXPANDED_NODES (carries the mark of the worst alias)."""

    def __init__(self, size: int, mark: yaml.Mark | None) -> None:
        self.problem = (f"aliases expand this document to more than {MAX_EXPANDED_NODES:,} values "
                        f"(at least {size:,})")
        self.problem_mark = mark
        super().__init__(self.problem)


def expanded_size(root: yaml.Node | None, limit: int = MAX_EXPANDED_NODES) -> tuple[int, yaml.Node | None]:
    """(values the tree expands to, the first node found past `limit`), stopping there.

    Each node is sized once (memoized by identity) so the walk costs the written size,
    not the expanded one; a recursive alias counts as past the limit.
    """
    sizes: dict[int, int] = {}  # -1 while a node's children are sized: meeting it again is a recursive alias
    stack: list[tuple[yaml.Node, bool]] = [(root, False)] if root is not None else []
    while stack:
        node, children_sized = stack.pop()
        children = _children(node)
        if not children_sized:
            if id(node) in sizes:
                continue
            if any(sizes.get(id(child)) == -1 for child in children) or node in children:
                return limit + 1, node
            sizes[id(node)] = -1
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
            continue
        total = 1 + sum(sizes[id(child)] for child in children)
        if total > limit:
            return total, node
        sizes[id(node)] = total
    return (sizes.get(id(root), 0) if root is not None else 0), None


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def load_bounded(text: str) -> tuple[Any, yaml.Node | None]:
    """(the value, its node tree, which keeps line numbers); AliasBombError past the cap, YAMLError if invalid.

    The value is built from a second parse: building it rewrites merge keys (`<<`) inside the
    nodes, and the tree must stay as written for duplicate-key checks and line numbers.
    """
    root = yaml.compose(text, Loader=SafeLoader)
    size, worst = expanded_size(root)
    if size > MAX_EXPANDED_NODES:
        raise AliasBombError(size, worst.start_mark if worst is not None else None)
    return yaml.load(text, Loader=SafeLoader), root
