"""Tell pytest collection errors apart: code not written yet, or a broken test file.

In TDD a test that imports `app.profile` before Builder has written it is a legitimate red;
a test file with a SyntaxError or a NameError is a broken test that Guardian must fix.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Literal

from council.toolchains.report import TestCase

CollectionErrorKind = Literal["missing_code", "broken_test"]

_EXC_LINE = re.compile(r"^(?:E\s+)?([A-Za-z_][\w.]*(?:Error|Exception|Exit))\b:?\s*(.*)$")
_MISSING_MODULE = re.compile(r"No module named '([^']+)'")
_SYNTAX_FILE = re.compile(r'File "([^"]+)", line \d+')
_FRAME = re.compile(r"^(\S+\.py):\d+: in ")
_SYNTAX = {"SyntaxError", "IndentationError", "TabError"}
_IMPORT = {"ImportError", "ModuleNotFoundError"}


def is_test_path(path: str) -> bool:
    """pytest's naming conventions, plus anything under a tests/ or test/ folder."""
    posix = PurePosixPath(path.replace("\\", "/"))
    name = posix.name
    if name == "conftest.py" or (
        name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))
    ):
        return True
    # Folder names only count for project-relative paths: /home/me/tests/proj/app.py is code.
    return not posix.is_absolute() and any(part in ("tests", "test") for part in posix.parts[:-1])


def exception_line(text: str) -> str:
    """The last `Type: message` line of a pytest traceback (`E   ModuleNotFoundError: ...`)."""
    for line in reversed(text.splitlines()):
        stripped = line.strip()
        match = _EXC_LINE.match(stripped)
        if match:
            return stripped[1:].strip() if stripped.startswith("E ") else stripped
    return ""


def classify_collection_error(case: TestCase) -> CollectionErrorKind:
    """`missing_code` when the code under test is absent or fails to import (the code side must
    act), `broken_test` when the test file itself cannot be compiled or run."""
    text = "\n".join(part for part in (case.traceback, case.message) if part)
    exc = _EXC_LINE.match(exception_line(text))
    exc_type = exc.group(1).rsplit(".", 1)[-1] if exc else ""

    if exc_type in _IMPORT:
        missing = _MISSING_MODULE.search(text)
        if missing and _is_test_module(missing.group(1)):
            return "broken_test"  # a test helper module the tests forgot to provide
        return "missing_code"
    if exc_type in _SYNTAX:
        where = _SYNTAX_FILE.findall(text)
        return "missing_code" if where and not _in_tests(where[-1], case) else "broken_test"
    if exc_type == "AttributeError" and re.search(r"module '[^']+' has no attribute", text):
        return "missing_code"  # `app.main.profile_router` used before it exists
    frames = [m.group(1) for line in text.splitlines() if (m := _FRAME.match(line.strip()))]
    own = [frame for frame in frames if "site-packages" not in frame and "<frozen" not in frame]
    if own and not _in_tests(own[-1], case):
        return "missing_code"  # raised inside the code under test while importing it
    return "broken_test"


def _in_tests(path: str, case: TestCase) -> bool:
    posix = path.replace("\\", "/")
    if case.file and (posix == case.file or posix.endswith("/" + case.file)):
        return True
    return is_test_path(posix)


def _is_test_module(dotted: str) -> bool:
    parts = dotted.split(".")
    last = parts[-1]
    return (
        parts[0] in ("tests", "test")
        or last == "conftest"
        or last.startswith("test_")
        or last.endswith("_test")
    )
