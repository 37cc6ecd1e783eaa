"""Tell JavaScript/TypeScript test-file load errors apart: code not written yet, or a broken test.

The Node twin of `python_errors`: a test importing `../src/profile` before Builder wrote it is a
legitimate red (`missing_code`); a test file that does not parse is Guardian's to fix
(`broken_test`). Jest, Vitest and `node --test` word these differently; the patterns below cover
each runner's own words (babel-jest, vite, node's CJS and ESM loaders, ts-jest diagnostics).
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from council.toolchains.python_errors import CollectionErrorKind
from council.toolchains.report import TestCase

JS_SUFFIXES = (".js", ".jsx", ".ts", ".tsx", ".mjs", ".cjs", ".mts", ".cts")
_TEST_DIRS = ("__tests__", "__mocks__", "test", "tests")

_MISSING_MODULE = [
    re.compile(r"Cannot find module ['\"]([^'\"]+)['\"]"),  # jest, node CJS/ESM, tsc TS2307
    re.compile(r"Cannot find package ['\"]([^'\"]+)['\"]"),  # node ESM, bare specifier
    re.compile(r"Failed to load url (\S+)"),  # vite / vitest
    re.compile(r"Failed to resolve import ['\"]([^'\"]+)['\"]"),  # vite import analysis
    re.compile(r"Could not locate module (\S+)"),  # jest moduleNameMapper
]
# The module exists but lacks what the test imports: the code side must add it.
_MISSING_EXPORT = re.compile(
    r"does not provide an export named|has no exported member|is not exported by"
    r"|No matching export|is not a function|is not a constructor"
)
# TS2307 cannot find module, TS2305/TS2614/TS2724 no exported member, TS2339/TS2551 no property.
_TS_MISSING = {"2307", "2305", "2614", "2724", "2339", "2551"}
_TS_CODE = re.compile(r"\bTS(\d{4,5})\b")
_SYNTAX = re.compile(
    r"SyntaxError|Unexpected token|Failed to parse source|Unterminated|Missing semicolon"
    r"|Expression expected|expected\.?$",
    re.MULTILINE,
)
# A source path in an error: `src/a.js:3:1`, `src/a.ts(3,1)`, `/abs/a.test.js: Unexpected`.
_PATH = re.compile(r"((?:[\w.@+-]+/)*[\w.@+-]+\.(?:[cm]?[jt]sx?))(?=[:(\s'\")]|$)")
_FRAME = re.compile(r"^\s*(?:at\s+(?:.*?\()?|❯\s+(?:\S+\s+)?)([^\s()]+?):(\d+)(?::\d+)?\)?\s*$")


def is_test_path(path: str) -> bool:
    """*.test.* / *.spec.* JavaScript or TypeScript files, and anything under __tests__/,
    __mocks__/, test/ or tests/ (project-relative paths only)."""
    posix = PurePosixPath(path.replace("\\", "/"))
    name = posix.name
    stem, dot, suffix = name.rpartition(".")
    if dot and f".{suffix}" in JS_SUFFIXES and stem.endswith((".test", ".spec")):
        return True
    return not posix.is_absolute() and any(part in _TEST_DIRS for part in posix.parts[:-1])


def classify_collection_error(case: TestCase) -> CollectionErrorKind:
    """`missing_code` when what the test file loads is absent or broken (the code side must act),
    `broken_test` when the test file itself does not parse or fails on its own."""
    text = "\n".join(part for part in (case.message, case.traceback) if part)
    for pattern in _MISSING_MODULE:
        match = pattern.search(text)
        if match:
            return "broken_test" if _is_test_module(match.group(1)) else "missing_code"
    codes = set(_TS_CODE.findall(text))
    if codes & _TS_MISSING:
        return "missing_code"
    if _SYNTAX.search(text) or any(code.startswith("1") for code in codes):
        where = _first_source_path(text)
        return "missing_code" if where and not _in_tests(where, case) else "broken_test"
    if _MISSING_EXPORT.search(text):
        return "missing_code"
    frames = [m.group(1) for line in text.splitlines() if (m := _FRAME.match(line))]
    own = [f for f in frames if "node_modules" not in f and not f.startswith("node:")]
    if own and not _in_tests(own[0], case):
        return "missing_code"  # thrown inside the code under test while the test loaded it
    return "broken_test"


def _first_source_path(text: str) -> str:
    for match in _PATH.finditer(text):
        path = match.group(1)
        if "node_modules" not in path:
            return path
    return ""


def _in_tests(path: str, case: TestCase) -> bool:
    posix = path.replace("\\", "/").removeprefix("./")
    if case.file and (posix == case.file or posix.endswith("/" + case.file)):
        return True
    return is_test_path(posix)


def _is_test_module(spec: str) -> bool:
    """A helper the tests forgot to provide (`./test-utils`, `../__mocks__/api`)."""
    posix = spec.replace("\\", "/")
    if not posix.startswith("."):
        return False  # a package: the project must declare it
    name = PurePosixPath(posix).name
    return (
        is_test_path(posix.lstrip("./"))
        or ".test" in name
        or ".spec" in name
        or name.startswith(("test-utils", "test_utils", "testUtils", "setupTests"))
    )
