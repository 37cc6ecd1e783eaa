"""Extract definitions and references from source files with tree-sitter queries."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Literal

from tree_sitter import Node, Query, QueryCursor
from tree_sitter_language_pack import get_language, get_parser

TagKind = Literal["def", "ref"]
MAX_SIGNATURE_CHARS = 200


@dataclass
class Tag:
    """One definition or reference of a name in a file (line is 1-based)."""

    path: str
    name: str
    kind: TagKind
    line: int
    signature: str = ""  # defs only: the declaration line(s) up to the body, whitespace folded
    category: str = ""  # defs only: class, function, method, interface, type, enum, const
    end_line: int = 0  # defs only: the last line of the definition (1-based, inclusive)


# Captures: `@name` is the defined name and `@def.<category>` the whole definition node, in the
# same pattern; `@ref` is a referenced name. Patterns match at any depth.
_PYTHON = """
(class_definition name: (identifier) @name) @def.class
(function_definition name: (identifier) @name) @def.function
(module (expression_statement (assignment left: (identifier) @name) @def.const))
(module (assignment left: (identifier) @name) @def.const)

(call function: (identifier) @ref)
(attribute attribute: (identifier) @ref)
(class_definition superclasses: (argument_list (identifier) @ref))
(type (identifier) @ref)
(generic_type (identifier) @ref)
(decorator (identifier) @ref)
(import_from_statement name: (dotted_name (identifier) @ref))
(import_from_statement name: (aliased_import name: (dotted_name (identifier) @ref)))
"""

_JS_COMMON = """
(function_declaration name: (identifier) @name) @def.function
(generator_function_declaration name: (identifier) @name) @def.function
(method_definition name: (property_identifier) @name) @def.method
(program (lexical_declaration
  (variable_declarator name: (identifier) @name value: [(arrow_function) (function_expression)])
  @def.function))
(program (variable_declaration
  (variable_declarator name: (identifier) @name value: [(arrow_function) (function_expression)])
  @def.function))
(export_statement declaration: (lexical_declaration
  (variable_declarator name: (identifier) @name value: [(arrow_function) (function_expression)])
  @def.function))
(export_statement declaration: (lexical_declaration
  (variable_declarator name: (identifier) @name) @def.const))
(export_statement declaration: (variable_declaration
  (variable_declarator name: (identifier) @name) @def.const))

(call_expression function: (identifier) @ref)
(member_expression property: (property_identifier) @ref)
(new_expression constructor: (identifier) @ref)
(import_specifier name: (identifier) @ref)
(import_clause (identifier) @ref)
"""

_JSX = """
(jsx_opening_element name: (identifier) @ref)
(jsx_self_closing_element name: (identifier) @ref)
"""

_JAVASCRIPT = (
    _JS_COMMON
    + _JSX
    + """
(class_declaration name: (identifier) @name) @def.class
(field_definition property: (property_identifier) @name
  value: [(arrow_function) (function_expression)]) @def.method
(class_heritage (identifier) @ref)
"""
)

_TYPESCRIPT = (
    _JS_COMMON
    + """
(class_declaration name: (type_identifier) @name) @def.class
(abstract_class_declaration name: (type_identifier) @name) @def.class
(interface_declaration name: (type_identifier) @name) @def.interface
(type_alias_declaration name: (type_identifier) @name) @def.type
(enum_declaration name: (identifier) @name) @def.enum
(function_signature name: (identifier) @name) @def.function
(abstract_method_signature name: (property_identifier) @name) @def.method
(public_field_definition name: (property_identifier) @name
  value: [(arrow_function) (function_expression)]) @def.method

(extends_clause value: (identifier) @ref)
(type_identifier) @ref
"""
)

_JAVA = """
(class_declaration name: (identifier) @name) @def.class
(interface_declaration name: (identifier) @name) @def.interface
(enum_declaration name: (identifier) @name) @def.enum
(record_declaration name: (identifier) @name) @def.class
(annotation_type_declaration name: (identifier) @name) @def.interface
(method_declaration name: (identifier) @name) @def.method
(field_declaration (modifiers) @mods declarator: (variable_declarator name: (identifier) @name))
  @def.const

(method_invocation name: (identifier) @ref)
(method_invocation object: (identifier) @ref)
(field_access object: (identifier) @ref)
(field_access field: (identifier) @ref)
(type_identifier) @ref
(import_declaration (scoped_identifier name: (identifier) @ref))
(marker_annotation name: (identifier) @ref)
(annotation name: (identifier) @ref)
"""

QUERIES = {
    "python": _PYTHON,
    "javascript": _JAVASCRIPT,
    "typescript": _TYPESCRIPT,
    "tsx": _TYPESCRIPT + _JSX,
    "java": _JAVA,
}

# Tree-sitter grammars emit these as the node holding a definition's body: the signature is
# everything before it.
_BODY_FIELDS = ("body",)
_WS = re.compile(r"\s+")


@cache
def _query(language: str) -> Query:
    return Query(get_language(language), QUERIES[language])


def supported_languages() -> tuple[str, ...]:
    """Grammar names we extract tags from."""
    return tuple(QUERIES)


def extract_tags(path: str, data: bytes, language: str) -> list[Tag]:
    """Definitions and references in one file's bytes; syntax errors yield what still parses."""
    defs, refs = _scan(path, data, language)
    ref_tags = [
        Tag(path=path, name=name, kind="ref", line=line)
        for name, line in sorted(refs, key=_by_line)
    ]
    return defs + ref_tags


def extract_index(path: str, data: bytes, language: str) -> tuple[list[Tag], dict[str, int]]:
    """Definitions, and for each referenced name on how many lines it is used: what ranking
    needs, without a Tag per reference."""
    defs, refs = _scan(path, data, language)
    counts: dict[str, int] = {}
    for name, _line in refs:
        counts[name] = counts.get(name, 0) + 1
    return defs, counts


def _by_line(ref: tuple[str, int]) -> tuple[int, str]:
    return ref[1], ref[0]


def _scan(path: str, data: bytes, language: str) -> tuple[list[Tag], set[tuple[str, int]]]:
    """Definitions (ordered by line) and the distinct (name, line) references."""
    tree = get_parser(language).parse(data)
    defs: dict[tuple[str, int], Tag] = {}
    def_name_spans: set[tuple[int, int]] = set()
    ref_spans: list[tuple[int, int, int]] = []
    for _pattern, captures in QueryCursor(_query(language)).matches(tree.root_node):
        names = captures.get("name")
        if names:
            category, node = _definition_capture(captures)
            if node is None or not _keep_definition(language, category, node, captures):
                continue
            name_node = names[0]
            name = _text(name_node)
            if category == "function" and _is_method(node):
                category = "method"
            key = (name, name_node.start_point[0])
            # A name can match two patterns (an exported arrow function is also an exported
            # const): the more specific category wins.
            known = defs.get(key)
            if known is None or (known.category == "const" and category != "const"):
                defs[key] = Tag(
                    path=path,
                    name=name,
                    kind="def",
                    line=name_node.start_point[0] + 1,
                    signature=_signature(data, node),
                    category=category,
                    end_line=node.end_point[0] + 1,
                )
            def_name_spans.add((name_node.start_byte, name_node.end_byte))
        for ref_node in captures.get("ref", ()):
            ref_spans.append((ref_node.start_byte, ref_node.end_byte, ref_node.start_point[0]))
    # A definition's own name is not a use of it (TS `type_identifier` catches both); one ref
    # per name and line is enough for ranking.
    refs = {
        (data[start:end].decode("utf-8", errors="replace"), row + 1)
        for start, end, row in ref_spans
        if (start, end) not in def_name_spans
    }
    return sorted(defs.values(), key=lambda t: (t.line, t.name)), refs


def _definition_capture(captures: dict[str, list[Node]]) -> tuple[str, Node | None]:
    for capture_name, nodes in captures.items():
        if capture_name.startswith("def."):
            return capture_name.removeprefix("def."), nodes[0]
    return "", None


def _keep_definition(language: str, category: str, node: Node, captures: dict) -> bool:
    if language == "java" and category == "const":
        # Only `static final` fields are constants other files use by name.
        modifiers = {_text(m) for mods in captures.get("mods", ()) for m in mods.children}
        return {"static", "final"} <= modifiers
    return True


def _is_method(node: Node) -> bool:
    # Python methods are function_definitions whose block belongs to a class.
    parent = node.parent
    if parent is not None and parent.type == "decorated_definition":
        parent = parent.parent
    return (
        parent is not None
        and parent.type == "block"
        and parent.parent is not None
        and parent.parent.type == "class_definition"
    )


def _signature(data: bytes, node: Node) -> str:
    """The declaration from the start of its line up to the body, on one line."""
    line_start = data.rfind(b"\n", 0, node.start_byte) + 1
    # Keep what leads the line (`export default`, `public`) unless it is other code, as in a
    # one-line `interface I { void m(); }`.
    if any(c in data[line_start : node.start_byte] for c in b"{};()="):
        line_start = node.start_byte
    end = None
    for field in _BODY_FIELDS:
        body = node.child_by_field_name(field)
        if body is not None:
            end = body.start_byte
            break
    if end is None:
        line_end = data.find(b"\n", node.start_byte)
        end = min(node.end_byte, len(data) if line_end == -1 else line_end)
    text = _without_comments(data, node, line_start, end).decode("utf-8", errors="replace")
    text = _WS.sub(" ", text).strip()
    text = text.replace("( ", "(").replace(" )", ")").replace(",)", ")")
    if len(text) > MAX_SIGNATURE_CHARS:
        text = text[: MAX_SIGNATURE_CHARS - 1] + "…"
    return text


def _without_comments(data: bytes, node: Node, start: int, end: int) -> bytes:
    """data[start:end] minus comments inside the definition (parameter notes and the like)."""
    pieces: list[bytes] = []
    cursor = start
    stack = [node]
    while stack:
        current = stack.pop()
        if current.start_byte >= end or current.end_byte <= cursor:
            continue
        if "comment" in current.type:
            pieces.append(data[cursor : current.start_byte])
            cursor = min(current.end_byte, end)
            continue
        # Children in reverse so the stack pops them in source order.
        stack.extend(reversed(current.children))
    pieces.append(data[cursor:end])
    return b"".join(pieces)


def _text(node: Node) -> str:
    return (node.text or b"").decode("utf-8", errors="replace")
