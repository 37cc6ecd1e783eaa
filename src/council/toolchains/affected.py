"""Which test files a change reaches, where the test runner cannot say so itself.

Java: a file reaches another when it names its class (the simple name as an identifier), so a
test of a service that uses a changed repository is reached through the service. JavaScript run
by `node --test`: relative imports and requires (Jest and Vitest find related tests themselves).
Both are static and approximate; the full suite, run once as the final gate, catches the rest.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path, PurePosixPath

from council.toolchains.node_errors import JS_SUFFIXES as _JS_EXTENSIONS

_IDENTIFIER = re.compile(r"[A-Za-z_$][\w$]*")
_JAVA_COMMENTS = re.compile(r"/\*.*?\*/|//[^\n]*", re.DOTALL)
_JS_SPECIFIER = re.compile(
    r"""(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*)['"](\.{1,2}/[^'"]+)['"]"""
)


def reached(changed: Iterable[str], uses: dict[str, set[str]]) -> set[str]:
    """Every file that uses a changed file, directly or through others (`uses`: file -> the
    files it uses)."""
    users: dict[str, set[str]] = {}
    for user, used in uses.items():
        for target in used:
            users.setdefault(target, set()).add(user)
    seen: set[str] = set()
    todo = list(changed)
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(users.get(current, ()))
    return seen


def affected_java_tests(
    root: Path, changed: Sequence[str], main: list[str], tests: list[str]
) -> list[str]:
    """Test files that name a changed class, or a class that (transitively) names one."""
    by_name = {PurePosixPath(f).stem: f for f in main}
    uses: dict[str, set[str]] = {}
    for rel in [*main, *tests]:
        try:
            text = (root / rel).read_text(encoding="utf-8", errors="replace")
            text = _JAVA_COMMENTS.sub("", text)
        except OSError:
            continue
        words = set(_IDENTIFIER.findall(text))
        uses[rel] = {by_name[w] for w in words & by_name.keys() if by_name[w] != rel}
    found = reached([c for c in changed if c.endswith(".java")], uses)
    return sorted(f for f in found if f in set(tests))


def affected_js_tests(
    root: Path, changed: Sequence[str], files: list[str], is_test: Callable[[str], bool]
) -> list[str]:
    """Test files that import or require a changed module, directly or through others."""
    known = set(files)
    uses: dict[str, set[str]] = {}
    for rel in files:
        try:
            text = (root / rel).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        here = PurePosixPath(rel).parent
        uses[rel] = {
            target
            for spec in _JS_SPECIFIER.findall(text)
            if (target := _resolve_js(here, spec, known)) is not None
        }
    return sorted(f for f in reached(changed, uses) if is_test(f))


def _resolve_js(here: PurePosixPath, spec: str, known: set[str]) -> str | None:
    parts: list[str] = []
    for part in (here / spec).parts:
        if part == "..":
            if parts:
                parts.pop()
        elif part != ".":
            parts.append(part)
    base = "/".join(parts)
    stem = base.rsplit(".", 1)[0] if PurePosixPath(base).suffix in _JS_EXTENSIONS else base
    candidates = [base, *(stem + e for e in _JS_EXTENSIONS)]
    candidates += [f"{base}/index{e}" for e in _JS_EXTENSIONS]
    return next((c for c in candidates if c in known), None)
