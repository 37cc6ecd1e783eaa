"""Build and cache a Python project's test environment with uv, keyed by its dependencies.

The env holds the project's dependencies (plus pytest), never the project itself: tests run with
PYTHONPATH pointing at the work tree, so edits are picked up without reinstalling. Envs live under
`<cache_dir>/envs/<key>` where the key hashes the dependency declarations and the interpreter, so
every iteration and every later run on the same dependencies reuses one env without calling uv.
An env is built in a temporary folder and renamed into place: a crash never leaves half an env.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from council.errors import ToolchainError
from council.events import EventSink, Notice, null_sink
from council.toolchains.report import tail_text
from council.toolchains.tools import require_tool, run_installer

ENV_FORMAT = 1  # bump when the layout of a cached env changes, to stop reusing old ones
MARKER = "council-env.json"
TEST_TOOLS = ("pytest",)
TEST_EXTRAS = ("dev", "test", "tests", "testing")
_STALE_BUILD_S = 24 * 3600
_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")
_REQ_INCLUDE = re.compile(r"^\s*(?:-r|-c|--requirement|--constraint)[\s=]+(\S+)")


@dataclass(frozen=True)
class PythonEnv:
    """A ready virtual environment with a project's test dependencies."""

    path: Path
    key: str
    requirements: tuple[str, ...] = ()
    requirement_files: tuple[str, ...] = ()
    reused: bool = False

    @property
    def bin_dir(self) -> Path:
        return self.path / ("Scripts" if os.name == "nt" else "bin")

    @property
    def python(self) -> Path:
        return self.bin_dir / ("python.exe" if os.name == "nt" else "python")


@dataclass
class Dependencies:
    """What a project declares it needs, read without running any of its code."""

    requirements: list[str] = field(default_factory=list)  # PEP 508 strings
    files: list[Path] = field(default_factory=list)  # passed to uv as `-r FILE`
    hashed: dict[str, str] = field(default_factory=dict)  # file name -> content, for the key


def discover_dependencies(root: Path) -> Dependencies:
    """pyproject (deps, test extras, dependency groups), requirements files, or setup.py."""
    deps = Dependencies()
    pyproject = root / "pyproject.toml"
    has_project_table = False
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ToolchainError(f"{pyproject} is not valid TOML: {exc}") from exc
        project = data.get("project")
        if isinstance(project, dict):
            has_project_table = True
            if "dependencies" in project.get("dynamic", []):
                # Only a build backend knows them; uv can ask it.
                _add_file(deps, pyproject, root)
            deps.requirements += _project_requirements(project)
        deps.requirements += _group_requirements(data.get("dependency-groups", {}))
    for path in _requirement_files(root):
        _add_file(deps, path, root)
    if not has_project_table and not deps.files:
        for name in ("setup.py", "setup.cfg"):
            if (root / name).is_file():
                _add_file(deps, root / name, root)
                break
    deps.requirements = list(dict.fromkeys(r.strip() for r in deps.requirements if r.strip()))
    return deps


def env_key(deps: Dependencies, python_id: str) -> str:
    blob = json.dumps(
        {
            "format": ENV_FORMAT,
            "python": python_id,
            "requirements": sorted(deps.requirements),
            "files": sorted(deps.hashed.items()),
            "tools": TEST_TOOLS,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def python_id(python: str | None) -> str:
    """Identify the interpreter an env is built on, without starting it."""
    if python is None:
        return f"{sys.implementation.name}-{platform.python_version()}-{platform.machine()}"
    return f"spec:{python}-{platform.machine()}"


def prepare_env(
    root: Path,
    *,
    cache_dir: Path,
    python: str | None = None,
    uv: str | None = None,
    install_timeout_s: float = 900,
    emit: EventSink = null_sink,
) -> PythonEnv:
    """The cached env for `root`'s dependencies, built with uv only when no usable one exists."""
    deps = discover_dependencies(root)
    key = env_key(deps, python_id(python))
    envs = cache_dir / "envs"
    final = envs / key
    env = PythonEnv(
        path=final,
        key=key,
        requirements=tuple(deps.requirements),
        requirement_files=tuple(str(p) for p in deps.files),
    )
    if _usable(final):
        emit(Notice(message=f"python env {key}: reusing {final}"))
        return _reused(env)
    envs.mkdir(parents=True, exist_ok=True)
    _remove_stale_builds(envs)
    if final.exists():  # a folder without our marker: not ours or damaged, never half-built by us
        shutil.rmtree(final, ignore_errors=True)
    uv_path = uv or require_tool("uv", "build the project's Python test environment")
    emit(Notice(message=f"python env {key}: building with uv ({len(deps.requirements)} deps)"))
    build_dir = Path(tempfile.mkdtemp(prefix=f".build-{key}-", dir=envs))
    try:
        venv = build_dir / "venv"
        _uv(
            [uv_path, "venv", "--quiet", "--relocatable", "--python", python or sys.executable]
            + [str(venv)],
            cwd=build_dir,
            timeout_s=install_timeout_s,
            emit=emit,
            what="create the virtual environment",
        )
        built = PythonEnv(path=venv, key=key)
        # Bytecode now: tests run with PYTHONDONTWRITEBYTECODE, so it could never be cached later.
        install = [uv_path, "pip", "install", "--compile-bytecode", "--python", str(built.python)]
        install += [*deps.requirements, *TEST_TOOLS]
        for path in deps.files:
            install += ["-r", str(path)]
        _uv(install, cwd=build_dir, timeout_s=install_timeout_s, emit=emit, what="install deps")
        marker = {
            "key": key,
            "root": str(root),
            "requirements": deps.requirements,
            "files": [str(p) for p in deps.files],
            "python": python_id(python),
            "created": time.time(),
        }
        (venv / MARKER).write_text(json.dumps(marker, indent=2), encoding="utf-8")
        try:
            os.rename(venv, final)
        except OSError:
            if not _usable(final):  # not a lost race with a concurrent build: a real failure
                raise
            return _reused(env)
    finally:
        shutil.rmtree(build_dir, ignore_errors=True)
    return env


def pythonpath_for(root: Path) -> list[Path]:
    """Import roots for running the work tree's code uninstalled: src/ (src layout), then root."""
    src = root / "src"
    if src.is_dir() and any(
        child.suffix == ".py" or (child / "__init__.py").is_file() for child in src.iterdir()
    ):
        return [src, root]
    return [root]


def _reused(env: PythonEnv) -> PythonEnv:
    return PythonEnv(env.path, env.key, env.requirements, env.requirement_files, reused=True)


def _usable(path: Path) -> bool:
    # exists() follows the interpreter symlink: a removed base Python makes the env unusable.
    return (path / MARKER).is_file() and PythonEnv(path=path, key="").python.exists()


def _uv(argv: list[str], *, cwd: Path, timeout_s: float, emit: EventSink, what: str) -> None:
    run_installer(
        "uv",
        argv,
        cwd=cwd,
        timeout_s=timeout_s,
        emit=emit,
        failure=f"uv failed to {what}",
        hint="Check the project's dependency declarations and that the package index is reachable.",
        drop_env=("VIRTUAL_ENV", "PYTHONPATH"),
        words=lambda text: tail_text(text, lines=40),
    )


def _project_requirements(project: dict[str, object]) -> list[str]:
    """[project] dependencies plus the test extras, following `name[extra]` self-references."""
    name = _normalise(str(project.get("name", "")))
    optional = project.get("optional-dependencies") or {}
    if not isinstance(optional, dict):
        optional = {}
    wanted = [extra for extra in TEST_EXTRAS if extra in optional]
    seen: set[str] = set()
    out = [str(r) for r in project.get("dependencies") or [] if isinstance(r, str)]
    while wanted:
        extra = wanted.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for req in optional.get(extra) or []:
            match = _REQ_NAME.match(str(req))
            if match and name and _normalise(match.group(1)) == name:
                wanted += [e.strip() for e in (match.group(2) or "").split(",") if e.strip()]
                continue
            out.append(str(req))
    return out


def _group_requirements(groups: object) -> list[str]:
    """PEP 735 dependency groups named like test groups, with `include-group` followed."""
    if not isinstance(groups, dict):
        return []
    out: list[str] = []
    seen: set[str] = set()
    wanted = [g for g in TEST_EXTRAS if g in groups]
    while wanted:
        group = wanted.pop()
        if group in seen:
            continue
        seen.add(group)
        for item in groups.get(group) or []:
            if isinstance(item, str):
                out.append(item)
            elif isinstance(item, dict) and isinstance(item.get("include-group"), str):
                wanted.append(item["include-group"])
    return out


def _requirement_files(root: Path) -> list[Path]:
    found = sorted(root.glob("requirements*.txt")) + sorted(root.glob("*-requirements.txt"))
    if (root / "requirements").is_dir():
        found += sorted((root / "requirements").glob("*.txt"))
    # Docs toolchains are heavy and never needed to run tests.
    return [p for p in dict.fromkeys(found) if p.is_file() and "doc" not in p.name.lower()]


def _add_file(deps: Dependencies, path: Path, root: Path) -> None:
    """Use a requirements-like file and hash it with everything it includes (-r / -c)."""
    if path not in deps.files:
        deps.files.append(path)
    pending = [path]
    while pending:
        current = pending.pop()
        label = _label(current, root)
        if label in deps.hashed or not current.is_file():
            continue
        text = current.read_text(encoding="utf-8", errors="replace")
        deps.hashed[label] = text
        if current.suffix == ".txt":
            for line in text.splitlines():
                match = _REQ_INCLUDE.match(line)
                if match:
                    pending.append((current.parent / match.group(1)).resolve())


def _label(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _remove_stale_builds(envs: Path) -> None:
    """Builds that crashed long ago (a live build is never a day old)."""
    now = time.time()
    for leftover in envs.glob(".build-*"):
        try:
            if now - leftover.stat().st_mtime > _STALE_BUILD_S:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            continue
