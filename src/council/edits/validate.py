"""Decide whether a path from a model may be written: inside the root, no symlinks, not frozen.

Every check returns a reason string for the model and the run record, or None when allowed.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from council.edits.model import EditPolicy

_DRIVE = re.compile(r"^[A-Za-z]:")


def normalize(path: str) -> str:
    """The canonical relative form of a model's path (forward slashes, no ./ or a/../ detours)."""
    path = path.replace("\\", "/")
    norm = posixpath.normpath(path) if path else path
    return "" if norm == "." else norm


def structural_reason(path: str) -> str | None:
    """Checks that need no file system: empty, NUL, absolute, escaping, inside .git."""
    if "\0" in path:
        return "the path contains a NUL byte"
    if not path.strip():
        return "the path is empty"
    unified = path.replace("\\", "/")
    if unified.startswith("/") or _DRIVE.match(unified) or unified.startswith("~"):
        return f"`{path}` is an absolute path; use a path relative to the repository root"
    norm = normalize(path)
    if not norm:
        return f"`{path}` does not name a file"
    if norm == ".." or norm.startswith("../"):
        return f"`{path}` points outside the repository"
    if any(part.lower() == ".git" for part in norm.split("/")):
        return f"`{path}` is inside .git/; git internals are never edited"
    return None


def symlink_reason(root: Path, norm: str) -> str | None:
    """Why writing `norm` would go through a symlink or land outside `root`, or None."""
    current = root
    for part in norm.split("/"):
        current = current / part
        if current.is_symlink():
            return f"`{norm}` goes through a symbolic link (`{current.relative_to(root)}`)"
        if not current.exists():
            break
    target = (root / norm).resolve()
    if not target.is_relative_to(root.resolve()):
        return f"`{norm}` resolves outside the repository"
    return None


def _glob_hit(norm: str, patterns: Iterable[str]) -> str | None:
    for pattern in patterns:
        pattern = pattern.replace("\\", "/").rstrip("/")
        candidates = {pattern}
        if pattern.startswith("**/"):
            candidates.add(pattern[3:])  # `**/x` also means `x` at the top
        for candidate in candidates:
            # A pattern naming a folder forbids everything below it.
            if fnmatch.fnmatchcase(norm, candidate) or fnmatch.fnmatchcase(norm, candidate + "/*"):
                return pattern
    return None


def _is_frozen(root: Path, norm: str, frozen: Mapping[str, str]) -> bool:
    keys = {normalize(k) for k in frozen}
    if norm in keys:
        return True
    target = root / norm
    if not target.exists():
        return False
    # Case-insensitive file systems: `Tests/Test_x.py` is the same file as `tests/test_x.py`.
    for key in keys:
        other = root / key
        try:
            if other.exists() and os.path.samefile(target, other):
                return True
        except OSError:
            continue
    return False


# Files an interpreter or test runner loads on its own before any test: from the code side
# they could rewrite every result (a `sitecustomize.py` on the path patches pytest at start-up).
_START_UP_HOOKS = ("sitecustomize.py", "usercustomize.py", "*.pth", "conftest.py")


def _harness_reason(norm: str, is_test_file: Callable[[str], bool]) -> str | None:
    name = posixpath.basename(norm)
    if is_test_file(norm) or any(fnmatch.fnmatchcase(name, p) for p in _START_UP_HOOKS):
        return (
            f"`{norm}` is part of the tests or of what runs them (a test file, conftest.py, "
            "sitecustomize.py or a .pth file); the code side must not write it. Change the "
            "code under test so the tests pass instead."
        )
    return None


def refusal_reason(root: Path, path: str, policy: EditPolicy) -> str | None:
    """Why `path` may not be written under `root`, or None when it may."""
    reason = structural_reason(path)
    if reason:
        return reason
    norm = normalize(path)
    reason = symlink_reason(root, norm)
    if reason:
        return reason
    if _is_frozen(root, norm, policy.frozen):
        return (
            f"`{norm}` is a frozen test file and must not be edited: the tests are the "
            "specification. Change the code under test so these tests pass instead."
        )
    if policy.is_test_file is not None:
        reason = _harness_reason(norm, policy.is_test_file)
        if reason:
            return reason
    hit = _glob_hit(norm, policy.forbidden_globs)
    if hit:
        return f"`{norm}` matches the forbidden pattern `{hit}`; it must not be edited"
    return None


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def freeze(root: Path, relpaths: Iterable[str]) -> dict[str, str]:
    """The `frozen` mapping for an EditPolicy: relpath -> sha256 of its current content."""
    return {normalize(p): sha256_file(root / normalize(p)) for p in relpaths}


def changed_frozen(root: Path, frozen: Mapping[str, str]) -> list[str]:
    """Frozen files whose content no longer matches the recorded hash (edited, or deleted)."""
    changed = []
    for rel, digest in frozen.items():
        target = root / normalize(rel)
        if not target.is_file() or sha256_file(target) != digest:
            changed.append(rel)
    return changed
