"""A shell line as the command policy sees it: pipelines of simple commands, parsed by
tree-sitter-bash (from tree-sitter-language-pack, the parser the repo map uses too).

The syntax tree is reduced to what the rules need: each simple command's words after quote
removal, the bodies of the substitutions in them (`$(...)`, backticks, `<(...)`: code that runs
too), whether a word holds a variable, the files its redirections read and write, and a script
fed to its standard input (a heredoc or here-string, which a shell runs). A line bash would not
accept (an unclosed quote or `$(`) is a ParseError: the policy cannot check it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any

_local = threading.local()  # tree-sitter parsers are not safe to share between threads

# Node types that are one shell word (possibly with quotes, expansions, substitutions inside).
_WORDISH = frozenset(
    {
        "word", "string", "raw_string", "ansi_c_string", "translated_string", "concatenation",
        "simple_expansion", "expansion", "command_substitution", "process_substitution",
        "arithmetic_expansion", "number",
    }
)  # fmt: skip
_SUBSTITUTIONS = frozenset({"command_substitution", "process_substitution"})
_EXPANSIONS = frozenset({"simple_expansion", "expansion"})
_READ_OPERATORS = frozenset({"<", "<&", "<&-", "<>"})
_DECLARATIONS = frozenset({"export", "declare", "local", "readonly", "typeset", "unset"})
_ANSI_C = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "a": "\a", "e": "\x1b"}


class ParseError(ValueError):
    """The command line is not something a shell would accept (unbalanced quotes, ...)."""


@dataclass
class Word:
    text: str
    quoted: bool = False
    subs: list[str] = field(default_factory=list)  # $(...), `...`, <(...) bodies: run too
    has_var: bool = False  # an unquoted or double-quoted $NAME / ${NAME}


@dataclass
class Simple:
    """One simple command: its words and the files its redirections read or write."""

    words: list[Word]
    reads: list[Word] = field(default_factory=list)
    writes: list[Word] = field(default_factory=list)
    stdin: str | None = None  # a heredoc's or here-string's text: a script, if a shell reads it

    def with_words(self, words: list[Word]) -> Simple:
        return replace(self, words=words)


def parse(text: str) -> list[list[Simple]]:
    """Pipelines of simple commands, in order (`;`, `&&`, `||`, `&`, newlines and compound
    commands separate pipelines; `|` and `|&` join the stages of one)."""
    source = text.encode("utf-8")
    root = _parser().parse(source).root_node
    if root.has_error:
        raise ParseError(_error_description(root, source))
    pipelines: list[list[Simple]] = []
    _statement(root, source, pipelines)
    return [[s for s in p if s.words or s.reads or s.writes] for p in pipelines if p]


def command_words(text: str) -> list[str]:
    """The words of a line's commands, quotes removed (deny-list entries, `env -S` strings)."""
    return [w.text for pipeline in parse(text) for simple in pipeline for w in simple.words]


def _parser() -> Any:
    parser = getattr(_local, "parser", None)
    if parser is None:
        from tree_sitter_language_pack import get_parser

        parser = _local.parser = get_parser("bash")
    return parser


def _error_description(root: Any, source: bytes) -> str:
    stack = [root]
    while stack:
        node = stack.pop(0)
        if node.is_missing:
            return f"missing `{node.type}` at column {node.start_point[1] + 1}"
        if node.type == "ERROR":
            snippet = source[node.start_byte : node.end_byte].decode("utf-8", "replace")
            return f"cannot read `{snippet.strip()[:40]}` at column {node.start_point[1] + 1}"
        stack.extend(child for child in node.children if child.has_error or child.is_missing)
    return "syntax error"


def _text(node: Any, source: bytes) -> str:
    return source[node.start_byte : node.end_byte].decode("utf-8", "replace")


# -- statements ------------------------------------------------------------------------------


def _statement(node: Any, source: bytes, out: list[list[Simple]]) -> None:
    """Append the pipelines `node` runs to `out`, in order."""
    kind = node.type
    if kind == "comment":
        return
    if kind == "command":
        out.append([_simple(node, source)])
    elif kind == "pipeline":
        out.append(_stages(node.named_children, source, out))
    elif kind == "redirected_statement":
        _redirected(node, source, out)
    elif kind in ("variable_assignment", "variable_assignments"):
        out.append([Simple(_assignments(node, source))])
    elif kind in ("declaration_command", "unset_command"):
        out.append([Simple(_declaration(node, source))])
    elif kind in _WORDISH:
        # A word outside a command (a `for` list, a `case` subject, `[[ ... ]]`): only the
        # substitutions in it run.
        out.append([Simple([], reads=[_word(node, source)])])
    else:  # program, list, subshell, { }, if/while/for/case, functions, `!`, `[[ ]]`, ...
        for child in node.named_children:
            _statement(child, source, out)


def _stages(nodes: list[Any], source: bytes, out: list[list[Simple]]) -> list[Simple]:
    """The stages of one pipeline; a compound stage `( ... )` contributes its commands."""
    stages: list[Simple] = []
    for node in nodes:
        if node.type == "command":
            stages.append(_simple(node, source))
            continue
        inner: list[list[Simple]] = []
        _statement(node, source, inner)
        for pipeline in inner:
            stages.extend(pipeline)
    return stages


def _redirected(node: Any, source: bytes, out: list[list[Simple]]) -> None:
    """`body > file`, `body <<EOF ... EOF`: redirections attach to the last stage of the body."""
    body = node.child_by_field_name("body")
    if body is not None and body.type in ("command", "pipeline"):
        stages = _stages([body] if body.type == "command" else body.named_children, source, out)
    else:
        stages = [Simple([])]
        if body is not None:
            _statement(body, source, out)
    out.append(stages)
    later: list[list[Simple]] = []
    for child in node.named_children:
        if body is not None and child == body:
            continue
        if child.type == "heredoc_redirect":
            _heredoc(child, source, stages, later)
        else:
            _redirect(child, source, stages[-1])
    out.extend(later)


def _heredoc(node: Any, source: bytes, stages: list[Simple], later: list[list[Simple]]) -> None:
    """`<<EOF`: the body is the command's input. tree-sitter-bash hangs the rest of the line
    (`> out`, `| sh`, `&& next`) under the heredoc node, so it is sorted out here."""
    target = stages[-1]
    literal = False
    for child in node.children:
        kind = child.type
        if kind == "heredoc_start":
            literal = any(q in _text(child, source) for q in "'\"\\")
        elif kind in ("file_redirect", "herestring_redirect"):
            _redirect(child, source, target)
        elif kind == "pipeline" and child.children and child.children[0].type in ("|", "|&"):
            stages.extend(_stages(child.named_children, source, later))  # `cat <<EOF | sh`
        elif kind == "heredoc_body":
            body = _text(child, source)
            word = Word("", quoted=literal)
            if not literal:
                _collect_substitutions(child, source, word)
            target.reads.append(word)
            target.stdin = body
        elif child.is_named and kind != "heredoc_end":
            _statement(child, source, later)


def _redirect(node: Any, source: bytes, simple: Simple) -> None:
    if node.type == "herestring_redirect":
        targets = [c for c in node.named_children]
        if targets:
            word = _word(targets[-1], source)
            simple.reads.append(word)
            simple.stdin = word.text
        return
    operator = next((c.type for c in node.children if not c.is_named), ">")
    for child in node.named_children:
        if child.type == "file_descriptor":
            continue
        word = _word(child, source)
        (simple.reads if operator in _READ_OPERATORS else simple.writes).append(word)


# -- simple commands and words -------------------------------------------------------------


def _simple(node: Any, source: bytes) -> Simple:
    simple = Simple([])
    for child in node.named_children:
        kind = child.type
        if kind == "variable_assignment":
            simple.words.append(_assignment(child, source))
        elif kind == "command_name":
            simple.words.extend(_word(c, source) for c in child.named_children)
        elif kind in ("file_redirect", "herestring_redirect"):
            _redirect(child, source, simple)
        else:
            simple.words.append(_word(child, source))
    return simple


def _assignments(node: Any, source: bytes) -> list[Word]:
    if node.type == "variable_assignment":
        return [_assignment(node, source)]
    return [_assignment(c, source) for c in node.named_children if c.type == "variable_assignment"]


def _assignment(node: Any, source: bytes) -> Word:
    """`NAME=value` as one word, the value's quotes removed and its substitutions kept."""
    name = node.child_by_field_name("name")
    value = node.child_by_field_name("value")
    word = _word(value, source) if value is not None else Word("")
    head = _text(name, source) if name is not None else ""
    return Word(f"{head}={word.text}", word.quoted, word.subs, word.has_var)


def _declaration(node: Any, source: bytes) -> list[Word]:
    words: list[Word] = []
    for child in node.children:
        if child.type in _DECLARATIONS:
            words.append(Word(child.type))
        elif child.type == "variable_assignment":
            words.append(_assignment(child, source))
        elif child.is_named:
            words.append(_word(child, source))
    return words


def _word(node: Any, source: bytes) -> Word:
    kind = node.type
    raw = _text(node, source)
    if kind == "word":
        return Word(_unescape(raw), quoted="\\" in raw)
    if kind == "raw_string":
        return Word(raw[1:-1], quoted=True)
    if kind == "ansi_c_string":
        return Word(_ansi_c(raw[2:-1]), quoted=True)
    if kind in ("string", "translated_string"):
        return _double_quoted(node, source)
    if kind == "concatenation":
        parts = [_word(c, source) for c in node.named_children]
        return Word(
            "".join(p.text for p in parts),
            quoted=any(p.quoted for p in parts),
            subs=[s for p in parts for s in p.subs],
            has_var=any(p.has_var for p in parts),
        )
    word = Word(raw, has_var=kind in _EXPANSIONS)
    _collect_substitutions(node, source, word)
    return word


def _double_quoted(node: Any, source: bytes) -> Word:
    word = Word("", quoted=True)
    parts: list[str] = []
    for child in node.named_children:
        if child.type == "string_content":
            parts.append(_unescape(_text(child, source), only='$`"\\\n'))
            continue
        inner = _word(child, source)
        parts.append(inner.text)
        word.subs += inner.subs
        word.has_var = word.has_var or inner.has_var
    word.text = "".join(parts)
    return word


def _collect_substitutions(node: Any, source: bytes, word: Word) -> None:
    """Bodies of the outermost substitutions under `node`; marks expansions as variables."""
    if node.type in _SUBSTITUTIONS:
        word.subs.append(_substitution_body(node, source))
        return
    if node.type in _EXPANSIONS:
        word.has_var = True
    for child in node.named_children:
        _collect_substitutions(child, source, word)


def _substitution_body(node: Any, source: bytes) -> str:
    """The code between `$(` and `)`, between backticks, or between `<(` and `)`."""
    first, last = node.children[0], node.children[-1]
    return source[first.end_byte : last.start_byte].decode("utf-8", "replace")


def _unescape(text: str, only: str | None = None) -> str:
    """Backslash escapes removed (in double quotes, only those of the characters in `only`)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and (only is None or text[i + 1] in only):
            if text[i + 1] != "\n":  # a backslash-newline continues the line
                out.append(text[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _ansi_c(body: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            out.append(_ANSI_C.get(body[i + 1], body[i + 1]))
            i += 2
        else:
            out.append(body[i])
            i += 1
    return "".join(out)
