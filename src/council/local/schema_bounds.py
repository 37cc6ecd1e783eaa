"""Bound a JSON schema so any answer that follows its grammar fits in a token budget.

Grammar-constrained decoding guarantees the *shape* of the answer but not that it ends: a weak
model can keep writing one string until max_tokens cuts it off mid-JSON. Capping every string's
length and every array's item count so the longest possible answer fits in the budget turns
"always the right shape" into "always complete and parseable". The caps are only used for a
second attempt, after an uncapped answer ran out of tokens.
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

# Tokens for one string character in the worst case: a `\u` escape with four hex digits is six
# bytes, and a byte-level vocabulary may spend one token per byte.
_PER_CHAR = 6
_INTEGER = 18  # sign, up to 16 digits, a space
_NUMBER = 54
_MIN_STRING = 4


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if not ref:
        return schema
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def worst_case_tokens(schema: dict[str, Any], root: dict[str, Any] | None = None) -> float:
    """The most tokens an answer matching `schema`'s grammar can take (inf if unbounded)."""
    root = root if root is not None else schema
    schema = _resolve(schema, root)
    if "const" in schema:
        return len(json.dumps(schema["const"])) + 1
    if "enum" in schema:
        return max(len(json.dumps(v)) for v in schema["enum"]) + 1
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        return max(worst_case_tokens(o, root) for o in options)
    kind = schema.get("type")
    if isinstance(kind, list):
        return max(worst_case_tokens({"type": k}, root) for k in kind)
    if kind == "string":
        if "maxLength" not in schema:
            return math.inf
        return 3 + _PER_CHAR * int(schema["maxLength"])
    if kind == "integer":
        return _INTEGER
    if kind == "number":
        return _NUMBER
    if kind == "boolean":
        return 6
    if kind == "null":
        return 5
    if kind == "array":
        items = schema.get("items")
        if "maxItems" not in schema or not isinstance(items, dict):
            return math.inf
        # "[" space items joined by "," space, "]" space
        return 4 + int(schema["maxItems"]) * (worst_case_tokens(items, root) + 2)
    properties = schema.get("properties")
    if properties:
        # "{" space, then per property: "name" space ":" space value "," space; "}" space
        return 4 + sum(
            len(json.dumps(name)) + 5 + worst_case_tokens(sub, root)
            for name, sub in properties.items()
        )
    return math.inf  # a free-form object or value


def _capped(node: Any, string_cap: int, item_cap: int) -> Any:
    if isinstance(node, list):
        return [_capped(v, string_cap, item_cap) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _capped(v, string_cap, item_cap) for k, v in node.items()}
    if out.get("type") == "string" and not ({"enum", "const", "pattern", "format"} & set(out)):
        floor = int(out.get("minLength", 0))
        out["maxLength"] = max(floor, min(int(out.get("maxLength", string_cap)), string_cap))
    if out.get("type") == "array":
        floor = int(out.get("minItems", 0))
        out["maxItems"] = max(floor, min(int(out.get("maxItems", item_cap)), item_cap))
    return out


def _required_only(node: Any) -> Any:
    """`node` with every object reduced to its required properties."""
    if isinstance(node, list):
        return [_required_only(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _required_only(v) for k, v in node.items()}
    if isinstance(out.get("properties"), dict):
        required = set(out.get("required", []))
        out["properties"] = {k: v for k, v in out["properties"].items() if k in required}
    return out


def _fit(schema: dict[str, Any], budget_tokens: int) -> dict[str, Any] | None:
    string_cap, item_cap = 2000, 16
    while True:
        candidate = _capped(copy.deepcopy(schema), string_cap, item_cap)
        if worst_case_tokens(candidate) <= budget_tokens:
            return candidate
        if string_cap > _MIN_STRING and (string_cap >= 64 or item_cap <= 1):
            string_cap = max(_MIN_STRING, int(string_cap * 0.7))
        elif item_cap > 1:
            item_cap -= 1
        else:
            return None


def bounded_schema(schema: dict[str, Any], budget_tokens: int) -> dict[str, Any] | None:
    """`schema` with caps low enough that its worst case fits `budget_tokens`, or None.

    All properties are kept if the caps allow it; otherwise only the required ones (a lean but
    valid answer beats a cut-off one).
    """
    return _fit(schema, budget_tokens) or _fit(_required_only(schema), budget_tokens)
