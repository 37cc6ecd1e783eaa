"""What the Python gates run with: the project's own pinned tools, its formatter, and the
blocks a formatter would rewrite (so a format finding has lines, like a lint finding)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from council.toolchains.gates import Finding
from council.toolchains.python_env import PythonEnv, read_toml
from council.toolchains.tools import require_tool

NO_FORMATTER = (
    "the project does not use a Python formatter (no [tool.ruff.format], black or "
    "ruff-format hook): format gate off"
)
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@")
# Where projects say how they format: task runners, hooks and CI.
_TOOLING_FILES = (
    "tox.ini", "noxfile.py", "Makefile", "justfile", "setup.cfg", ".pre-commit-config.yaml",
    "CONTRIBUTING.md", "CONTRIBUTING.rst",
)  # fmt: skip
_TOOLING_GLOBS = (".github/workflows/*.yml", ".github/workflows/*.yaml", ".ci/*", "scripts/*")
_RUFF_FORMAT = re.compile(r"\bruff[ -]format\b")
_BLACK = re.compile(r"(?:\bid:\s*black\b|psf/black|\bblack\s+(?:--|\.|\w))")
_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def find_in_env(env: PythonEnv | None, name: str) -> str | None:
    """`name` as installed in the project's env (its own pinned version), if it is there."""
    if env is None:
        return None
    for folder in env.bin_dirs:
        candidate = folder / name
        if candidate.is_file():
            return str(candidate)
    return None


def project_tool(env: PythonEnv | None, name: str, purpose: str) -> str:
    """The project's own `name` when its dependencies install it, else council's."""
    return find_in_env(env, name) or require_tool(name, purpose)


def python_formatter(root: Path) -> str | None:
    """`ruff` or `black` when the project formats its code with it, else None.

    Signals: `[tool.ruff.format]` / `[tool.black]` in pyproject.toml, a `[format]` table in
    ruff.toml, black among its declared dependencies, or the formatter named in its hooks,
    task runners or CI. A `[tool.ruff]` table alone configures the linter only.
    """
    pyproject = read_toml(root / "pyproject.toml")
    tool = pyproject.get("tool") if isinstance(pyproject.get("tool"), dict) else {}
    ruff = tool.get("ruff") if isinstance(tool, dict) else None
    if isinstance(ruff, dict) and "format" in ruff:
        return "ruff"
    if any("format" in read_toml(root / name) for name in ("ruff.toml", ".ruff.toml")):
        return "ruff"
    if isinstance(tool, dict) and "black" in tool:
        return "black"
    texts = [_read(root / name) for name in _TOOLING_FILES]
    texts += [_read(path) for pattern in _TOOLING_GLOBS for path in sorted(root.glob(pattern))]
    if any(_RUFF_FORMAT.search(text) for text in texts):
        return "ruff"
    if "black" in _declared_names(pyproject, root) or any(_BLACK.search(t) for t in texts):
        return "black"
    return None


def format_findings(diff: str, root: Path, expected: Sequence[str], tool: str) -> list[Finding]:
    """One finding per block of a formatter's unified diff (changed lines between context
    lines), spanning the current lines it would rewrite; a file in `expected` the diff does not
    show gets a file-level finding."""
    message = f"would be reformatted (run `{tool}`)"
    findings: list[Finding] = []
    current = ""
    old = 0
    removed: list[int] = []
    inserted = False

    def close_block() -> None:
        nonlocal inserted
        if current and removed:
            findings.append(Finding(current, removed[0], "warning", "format", message, removed[-1]))
        elif current and inserted:  # lines added between two lines: both neighbours change
            findings.append(Finding(current, max(old - 1, 1), "warning", "format", message, old))
        removed.clear()
        inserted = False

    for line in diff.splitlines():
        if line.startswith("--- "):
            close_block()
            current = _diff_path(line[4:], root)
        elif line.startswith("+++ "):
            continue
        elif match := _HUNK.match(line):
            close_block()
            old = int(match.group(1))
        elif line.startswith("-"):
            removed.append(old)
            old += 1
        elif line.startswith("+"):
            inserted = True
        elif line.startswith(" "):
            close_block()
            old += 1
    close_block()
    shown = {f.file for f in findings}
    for file in expected:
        if file not in shown:
            findings.append(Finding(file, 0, "warning", "format", message))
    return findings


def _diff_path(text: str, root: Path) -> str:
    return rel_path(text.split("\t", 1)[0].strip(), root)


def rel_path(path: str, root: Path) -> str:
    """A tool's path for a file (absolute, or relative with ./ or backslashes) relative to the
    project root, in posix form."""
    if not path:
        return ""
    candidate = Path(path)
    if candidate.is_absolute():
        try:
            return candidate.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            return candidate.as_posix()
    return PurePosixPath(path.replace("\\", "/")).as_posix().removeprefix("./")


def _declared_names(pyproject: dict, root: Path) -> set[str]:
    project = pyproject.get("project") if isinstance(pyproject.get("project"), dict) else {}
    reqs: list[str] = [str(r) for r in project.get("dependencies") or []]
    for extra in (project.get("optional-dependencies") or {}).values():
        reqs += [str(r) for r in extra or []]
    groups = pyproject.get("dependency-groups")
    for group in (groups or {}).values() if isinstance(groups, dict) else []:
        reqs += [r for r in group or [] if isinstance(r, str)]
    for path in sorted(root.glob("requirements*.txt")) + sorted(root.glob("requirements/*.txt")):
        reqs += _read(path).splitlines()
    names = set()
    for req in reqs:
        match = _REQ_NAME.match(req)
        if match:
            names.add(match.group(1).lower())
    return names


def _read(path: Path, limit: int = 200_000) -> str:
    try:
        if not path.is_file():
            return ""
        with path.open(encoding="utf-8", errors="replace") as fh:
            return fh.read(limit)
    except OSError:
        return ""
