"""Which files of a repository are context candidates, and how to read them safely."""

from __future__ import annotations

import fnmatch
import os
import stat
import subprocess
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

MAX_FILE_BYTES = 1_000_000
MAX_AVERAGE_LINE = 200  # bytes; hand-written code averages well under 80
MAX_LINE = 10_000
# Folders that hold dependencies, builds or our own state: never worth a model's attention.
SKIP_DIRS = frozenset(
    {".git", "node_modules", ".venv", "venv", "__pycache__", "build", "dist", ".council"}
)
# Tracked or not, our own run state is never context.
ALWAYS_SKIP_DIRS = frozenset({".git", ".council"})

LANGUAGE_BY_SUFFIX = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".jsx": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".java": "java",
}


def language_for(path: str) -> str | None:
    """The tree-sitter grammar name for a path, or None when we extract no tags from it."""
    return LANGUAGE_BY_SUFFIX.get(PurePosixPath(path).suffix.lower())


def list_candidate_files(root: Path, exclude: Sequence[str] = ()) -> list[str]:
    """Relative POSIX paths of files under `root`: git's view when it is a repo, else a walk."""
    listed = _git_listed_files(root)
    if not listed:
        # Not a repo, or a folder the enclosing repo ignores (a vendored tree, a venv): git has
        # nothing to say about it, so walk it.
        listed = _walked_files(root)
    paths = {p for p in listed if not _excluded(p, exclude)}
    real_root = root.resolve()
    return sorted(p for p in paths if (root / p).is_file() and _inside(real_root, root / p))


def read_text_file(root: Path, rel_path: str) -> bytes | None:
    """The file's bytes, or None when it is missing, too large, outside root or binary."""
    # Plain os calls: this runs for every candidate file of every build.
    full = os.path.join(root, rel_path)
    try:
        info = os.lstat(full)
        if stat.S_ISLNK(info.st_mode):
            if not _inside(root.resolve(), Path(full)):
                return None
            info = os.stat(full)
        if info.st_size > MAX_FILE_BYTES:
            return None
        with open(full, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    # The same sniff git uses: a NUL byte early on means binary.
    if b"\0" in data[:8192] or looks_minified(data):
        return None
    return data


def looks_minified(data: bytes) -> bool:
    """True for bundled or minified code: very long lines, nothing a person maintains."""
    if len(data) < 4096:
        return False
    lines = data.count(b"\n") + 1
    return len(data) / lines > MAX_AVERAGE_LINE or max(map(len, data.split(b"\n"))) > MAX_LINE


def normalize_rel_path(root: Path, path: str) -> str | None:
    """A user- or model-given path as a relative POSIX path under root, or None if outside."""
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = root / candidate
    try:
        rel = candidate.resolve().relative_to(root.resolve())
    except (ValueError, OSError):
        return None
    return rel.as_posix()


def _git_listed_files(root: Path) -> list[str] | None:
    try:
        result = subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"],
            cwd=root,
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    names = result.stdout.decode("utf-8", errors="surrogateescape").split("\0")
    return [n for n in names if n and not (set(PurePosixPath(n).parts[:-1]) & ALWAYS_SKIP_DIRS)]


def _walked_files(root: Path) -> list[str]:
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        base = Path(dirpath).relative_to(root)
        found.extend((base / name).as_posix() for name in filenames)
    return found


def _excluded(rel_path: str, patterns: Sequence[str]) -> bool:
    parts = PurePosixPath(rel_path).parts
    for pattern in patterns:
        pattern = pattern.strip().rstrip("/")
        if not pattern:
            continue
        if fnmatch.fnmatch(rel_path, pattern) or rel_path.startswith(pattern + "/"):
            return True
        if any(fnmatch.fnmatch(part, pattern) for part in parts):
            return True
    return False


def _inside(real_root: Path, path: Path) -> bool:
    # A symlink may point anywhere; we only read what really lives under root. Neither git nor
    # our walk descends into symlinked folders, so only the file itself needs checking.
    if not path.is_symlink():
        return True
    try:
        path.resolve().relative_to(real_root)
    except (ValueError, OSError):
        return False
    return True
