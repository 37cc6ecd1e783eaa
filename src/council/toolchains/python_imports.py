"""Which Python test files a change reaches, following the import graph of the project's modules.

A test is affected when it imports a changed module, directly or through other project modules
(importing `a.b.c` also runs `a/__init__.py` and `a/b/__init__.py`). A `conftest.py` that is
reached, or changed, affects every test below its folder. Parsing is static (ast), so imports
made by strings at run time are not seen; the full suite, run once at the end, catches those.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path, PurePosixPath

# Parsed imports per file, keyed by (path, mtime, size): a run re-parses only what changed.
_PARSED: dict[tuple[str, int, int], list[tuple[str, int]]] = {}


def affected_python_tests(
    root: Path,
    changed: Sequence[str],
    *,
    is_test: Callable[[str], bool],
    import_roots: Sequence[Path],
    skip_dirs: Iterable[str] = (),
) -> list[str]:
    """Project-relative test files that import (transitively) any of `changed`."""
    files = _python_files(root, set(skip_dirs))
    index = _module_index(root, files, import_roots)
    known = set(files)
    importers: dict[str, set[str]] = {}
    for rel in files:
        for target in _resolved_imports(root, rel, index, known):
            importers.setdefault(target, set()).add(rel)
    reached: set[str] = set()
    todo = [p for p in changed if p.endswith(".py")]
    while todo:
        current = todo.pop()
        if current in reached:
            continue
        reached.add(current)
        todo.extend(importers.get(current, ()))
    tests = {rel for rel in reached if is_test(rel)}
    for conftest in (p for p in reached if PurePosixPath(p).name == "conftest.py"):
        folder = PurePosixPath(conftest).parent
        tests |= {rel for rel in files if is_test(rel) and _under(rel, folder)}
    return sorted(t for t in tests if PurePosixPath(t).name != "conftest.py")


def _under(rel: str, folder: PurePosixPath) -> bool:
    return str(folder) in ("", ".") or PurePosixPath(rel).is_relative_to(folder)


def _python_files(root: Path, skip: set[str]) -> list[str]:
    out = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in skip and not d.startswith("."))
        for name in names:
            if name.endswith(".py"):
                out.append((Path(folder) / name).relative_to(root).as_posix())
    return sorted(out)


def _module_index(root: Path, files: list[str], import_roots: Sequence[Path]) -> dict[str, str]:
    """Dotted module name -> file, for every file under every import root (first root wins)."""
    index: dict[str, str] = {}
    for base in import_roots:
        try:
            prefix = base.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            continue
        for rel in files:
            inside = rel if prefix in ("", ".") else rel.removeprefix(prefix + "/")
            if inside == rel and prefix not in ("", "."):
                continue
            index.setdefault(_dotted(inside), rel)
    return index


def _dotted(rel: str) -> str:
    parts = list(PurePosixPath(rel).with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, int]]:
    """(module, level) for every import statement; `from m import x` yields m and m.x."""
    try:
        stat = path.stat()
    except OSError:
        return []
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key in _PARSED:
        return _PARSED[key]
    try:
        tree = ast.parse(path.read_bytes())
    except (SyntaxError, ValueError, OSError):
        tree = None
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree) if tree is not None else ():
        if isinstance(node, ast.Import):
            found += [(alias.name, 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            found.append((base, node.level))
            found += [(f"{base}.{a.name}" if base else a.name, node.level) for a in node.names]
    _PARSED[key] = found
    return found


def _resolved_imports(root: Path, rel: str, index: dict[str, str], known: set[str]) -> set[str]:
    """The project files one file's imports run (the module and its parent packages)."""
    package = _dotted(rel).split(".")
    if PurePosixPath(rel).name != "__init__.py":
        package = package[:-1]
    # pytest's default import mode puts a test's own folder on sys.path: siblings import bare.
    here = PurePosixPath(rel).parent
    out: set[str] = set()
    for module, level in _imports(root / rel):
        if level:
            anchor = package[: len(package) - (level - 1)] if level - 1 <= len(package) else []
            module = ".".join([*anchor, module] if module else anchor)
        parts = module.split(".")
        for end in range(len(parts), 0, -1):
            name = ".".join(parts[:end])
            target = index.get(name)
            if target is None and not level:
                sibling = (here / "/".join(parts[:end])).as_posix()
                target = next(
                    (s for s in (f"{sibling}.py", f"{sibling}/__init__.py") if s in known), None
                )
            if target is not None and target != rel:
                out.add(target)
    return out
