"""Keep only listed fields of a JSON object: what `aksdiag capture` writes is built from the
field lists the projections read (`diagnostics.projection.FIELDS`,
`diagnostics.collectors.armjson.ARM_FIELDS`), never a whole object scrubbed by a denylist.

A field list is a tuple of dotted paths:
- `metadata.name`        a scalar (strings are redacted and capped on the way);
- `spec.ports[].port`    `[]` walks a list of objects; `spec.podCIDRs[]` a list of scalars;
- `metadata.labels{}`    a string map (keys and values redacted; values under secret-ish keys
                         masked whatever their format); `metadata.labels{a,b}` only those keys.
A dict or list named on a path is kept, even when none of its own fields are (an empty
`podSelector: {}` means "every pod"). Anything not named is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from diagnostics.redact import redact_mapping, redact_text

MAX_VALUE = 4000  # one captured string value, at most (then "…[truncated N characters]")

Tree = dict[str, "Tree | str"]  # name -> subtree, or a leaf: "" scalar, "[]", "{}", "{a,b}"


@cache
def compile_paths(paths: tuple[str, ...]) -> Tree:
    """Dotted paths -> a tree of names (cached: a field list is a module constant)."""
    tree: Tree = {}
    for path in paths:
        node = tree
        path, brace, keys = path.partition("{")  # map keys may hold dots
        parts = path.split(".")
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if last and brace:
                node[part] = "{" + keys
            elif last and part.endswith("[]"):
                node[part[:-2]] = "[]"
            elif last:
                node.setdefault(part, "")
            else:
                name = part[:-2] if part.endswith("[]") else part
                child = node.get(name)
                if not isinstance(child, dict):
                    child = node[name] = {}
                node = child
    return tree


def _scalar(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value, MAX_VALUE)
    if value is None or isinstance(value, bool | int | float):
        return value
    return None  # a dict or list where the list expects a scalar: not kept


def _keep(value: Any, tree: Tree) -> Any:
    if isinstance(value, list):
        return [_keep(item, tree) for item in value if isinstance(item, dict)]
    if not isinstance(value, dict):
        return None
    out: dict[str, Any] = {}
    for name, sub in tree.items():
        if name not in value:
            continue
        item = value[name]
        if isinstance(sub, dict):
            if isinstance(item, dict | list):
                out[name] = _keep(item, sub)
            elif item is None:
                out[name] = None
        elif sub.startswith("{"):
            if isinstance(item, dict):
                only = set(sub[1:-1].split(",")) if sub != "{}" else None
                out[name] = redact_mapping(
                    {str(k): str(v) for k, v in item.items() if only is None or k in only},
                    MAX_VALUE,
                )
        elif sub == "[]":
            if isinstance(item, list):
                out[name] = [s for s in (_scalar(v) for v in item) if s is not None]
        else:
            out[name] = _scalar(item)
    return out


def keep(obj: dict[str, Any], paths: Iterable[str]) -> dict[str, Any]:
    """A new object with only the listed fields of `obj`, strings redacted and capped."""
    kept = _keep(obj, compile_paths(tuple(paths)))
    return kept if isinstance(kept, dict) else {}
