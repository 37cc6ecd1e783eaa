"""Build and cache a Python project's test environment with uv, keyed by its dependencies.

Two layers. The base env holds the project's dependencies (its own, its test extras and groups,
its requirement files) plus pytest, and lives under `<cache_dir>/envs/<key>` where the key hashes
the dependency declarations and the interpreter: every iteration and every later run on the same
dependencies reuses it without calling uv. It is built the way users install a project:
`uv pip install -e .[extras] -r requirements...` run from the project root, so `-e .` or
`.[testutils]` in a requirements file and `name[extra]` naming the project itself mean this
tree, never a release from the index; then the project itself is uninstalled again, because an
editable install points at one work tree and the base env is shared by many.

The overlay is per work tree (`<cache_dir>/envs/overlays/`): a small venv whose site-packages
chains to the base env's, with the project installed into it by `uv pip install --no-deps -e`,
so code that reads its own installed metadata (version, entry points) works on every tree for
the price of one editable build. Tests still put the tree first on PYTHONPATH, so new modules
are importable without reinstalling. A project that cannot be built gets deps only (as before)
and a notice. Envs are built in a temporary folder and renamed into place: a crash never leaves
half an env.
"""

from __future__ import annotations

import configparser
import dataclasses
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from council.errors import ToolchainError
from council.events import EventSink, Notice, null_sink
from council.toolchains.report import tail_text
from council.toolchains.tools import require_tool, run_installer

ENV_FORMAT = 2  # bump when the layout of a cached env changes, to stop reusing old ones
MARKER = "council-env.json"
OVERLAY_MARKER = "council-overlay.json"
TEMPLATE_DIR = "council-project"  # in a base env: the project's editable install, to re-point
TEST_TOOLS = ("pytest",)
TEST_EXTRAS = ("dev", "test", "tests", "testing")
_STALE_BUILD_S = 24 * 3600
_REQ_INCLUDE = re.compile(r"^\s*(?:-r|-c|--requirement|--constraint)[\s=]+(\S+)")
_EDITABLE = re.compile(r"^\s*(?:-e|--editable)[\s=]+")
_PATH_EXTRAS = re.compile(r"^(?P<path>.*?)(?:\[(?P<extras>[^\]]*)\])?$")
# Files a build backend reads: a change to them may change what an editable install provides.
_BUILD_INPUTS = ("pyproject.toml", "setup.py", "setup.cfg")


@dataclass(frozen=True)
class PythonEnv:
    """A ready virtual environment with a project's test dependencies (and, in its overlay,
    the project itself)."""

    path: Path  # the base env: dependencies, shared by every tree with the same ones
    key: str
    requirements: tuple[str, ...] = ()
    requirement_files: tuple[str, ...] = ()
    reused: bool = False
    overlay: Path | None = None  # this work tree's layer with the project installed
    project: str | None = None  # the project's distribution name when it is installed

    @property
    def runtime(self) -> Path:
        """The env tests run in: the overlay when there is one, else the base env."""
        return self.overlay or self.path

    @property
    def bin_dir(self) -> Path:
        return _bin(self.runtime)

    @property
    def python(self) -> Path:
        return self.bin_dir / ("python.exe" if os.name == "nt" else "python")

    @property
    def bin_dirs(self) -> tuple[Path, ...]:
        """Script folders, the project's layer first (its console scripts), then its deps'."""
        return tuple(dict.fromkeys([self.bin_dir, _bin(self.path)]))

    @property
    def paths(self) -> tuple[Path, ...]:
        """Folders a sandboxed run must be able to read."""
        return tuple(dict.fromkeys([self.runtime, self.path]))


@dataclass
class Dependencies:
    """What a project declares it needs, read without running any of its code."""

    requirements: list[str] = field(default_factory=list)  # PEP 508 strings
    files: list[Path] = field(default_factory=list)  # passed to uv as `-r FILE`
    hashed: dict[str, str] = field(default_factory=dict)  # file name -> content, for the key
    installable: bool = False  # a build backend can install the project (pyproject/setup.py)
    name: str = ""  # the project's normalised name, when pyproject.toml says it
    extras: list[str] = field(default_factory=list)  # of the project itself, to install with it
    backend_files: list[Path] = field(default_factory=list)  # deps only a build backend reads


def discover_dependencies(root: Path) -> Dependencies:
    """pyproject (deps, test extras, dependency groups), requirements files, or setup.py.

    References to the project itself (`name[extra]` in a group or an extra, `-e .` or
    `.[extra]` in a requirements file) become extras of the project's own install."""
    deps = Dependencies()
    pyproject = root / "pyproject.toml"
    has_project_table = False
    data: dict = {}
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ToolchainError(f"{pyproject} is not valid TOML: {exc}") from exc
        project = data.get("project")
        if isinstance(project, dict):
            has_project_table = True
            deps.name = _normalise(str(project.get("name", "")))
    if not deps.name:
        deps.name = _setup_cfg_name(root)  # setup.cfg-declared projects: self-references too
    deps.installable = (
        has_project_table
        or isinstance(data.get("build-system"), dict)
        or (root / "setup.py").is_file()
    )
    for req in _group_requirements(data.get("dependency-groups", {})):
        extras = _self_extras(req, deps.name, root)
        if extras is None:
            deps.requirements.append(req)
        else:
            deps.extras += extras
    for path in _requirement_files(root):
        _add_file(deps, path, root)
    if has_project_table:
        project = data["project"]
        if "dependencies" in project.get("dynamic", []):
            # Only a build backend knows them: the project's own install brings them (or,
            # when it cannot be built, uv asks the backend for them).
            _hash_file(deps, pyproject, root)
            deps.backend_files.append(pyproject)
        own, extras = _project_requirements(project, [*TEST_EXTRAS, *deps.extras])
        deps.requirements += own
        deps.extras = [e for e in deps.extras if e not in extras] + extras
        if "optional-dependencies" in project.get("dynamic", []):
            deps.extras += TEST_EXTRAS  # only the backend knows them; see below
    else:
        legacy = [root / n for n in ("setup.py", "setup.cfg") if (root / n).is_file()]
        for path in legacy:  # install_requires and extras_require live here (either or both)
            _hash_file(deps, path, root)
        deps.backend_files += legacy[:1]
        if legacy:
            # Test extras (`extras_require={"testing": ...}`) cannot be read without running
            # setup.py: ask for every usual name; uv installs those the project has and warns
            # about the rest.
            deps.extras += TEST_EXTRAS
    deps.requirements = list(dict.fromkeys(r.strip() for r in deps.requirements if r.strip()))
    deps.extras = sorted(set(deps.extras))
    return deps


def env_key(deps: Dependencies, python_id: str) -> str:
    blob = json.dumps(
        {
            "format": ENV_FORMAT,
            "python": python_id,
            "requirements": sorted(deps.requirements),
            "files": sorted(deps.hashed.items()),
            "installable": deps.installable,
            "extras": deps.extras,
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
    """The cached env for `root`'s dependencies, built with uv only when no usable one exists,
    with the project installed into `root`'s own overlay when it can be built."""
    root = root.resolve()
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
        env = _reused(env)
    else:
        _build_base(root, deps, final, python=python, uv=uv, timeout_s=install_timeout_s, emit=emit)
    if not deps.installable:
        return env  # nothing to build: tests run from the tree as it is
    installed = _overlay(root, env, uv=uv, timeout_s=install_timeout_s, emit=emit)
    if installed is None:
        return env
    overlay, project = installed
    return dataclasses.replace(env, overlay=overlay, project=project)


def _build_base(
    root: Path,
    deps: Dependencies,
    final: Path,
    *,
    python: str | None,
    uv: str | None,
    timeout_s: float,
    emit: EventSink,
) -> None:
    envs = final.parent
    key = final.name
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
            timeout_s=timeout_s,
            emit=emit,
            what="create the virtual environment",
        )
        built = PythonEnv(path=venv, key=key)
        # Bytecode now: tests run with PYTHONDONTWRITEBYTECODE, so it could never be cached later.
        install = [uv_path, "pip", "install", "--compile-bytecode", "--python", str(built.python)]
        files = [_without_self(p, deps, root, build_dir) for p in deps.files]
        rest = [*deps.requirements, *TEST_TOOLS, *(a for f in files for a in ("-r", str(f)))]
        project = ""
        if deps.installable:
            # As users install it, from its root: `.` in a requirements file is this tree.
            extras = f"[{','.join(deps.extras)}]" if deps.extras else ""
            try:
                with _tree_untouched(root):
                    _uv(
                        [*install, "-e", f"{root}{extras}", *rest],
                        cwd=root,
                        timeout_s=timeout_s,
                        emit=emit,
                        what="install the project",
                    )
                project = _installed_from(venv, root)
                if project:
                    _save_template(venv, root, project)
            except ToolchainError as exc:
                emit(
                    Notice(
                        level="warning",
                        message="python env: the project itself could not be installed, so its "
                        f"tests run from the tree uninstalled: {_gist(exc.message)}",
                    )
                )
        if project:
            # The base env is shared by every tree: the editable install of this one goes, its
            # dependencies stay; each tree installs the project into its own overlay.
            _uv(
                [uv_path, "pip", "uninstall", "--python", str(built.python), project],
                cwd=build_dir,
                timeout_s=timeout_s,
                emit=emit,
                what="uninstall the project",
            )
        else:
            fallback = _static_requirements(deps)
            with _tree_untouched(root):
                _uv(
                    [*install, *fallback, *rest],
                    cwd=root,
                    timeout_s=timeout_s,
                    emit=emit,
                    what="install deps",
                )
        marker = {
            "key": key,
            "root": str(root),
            "requirements": deps.requirements,
            "files": [str(p) for p in deps.files],
            "extras": deps.extras,
            "project": project,
            "python": python_id(python),
            "created": time.time(),
        }
        (venv / MARKER).write_text(json.dumps(marker, indent=2), encoding="utf-8")
        try:
            os.rename(venv, final)
        except OSError:
            if not _usable(final):  # not a lost race with a concurrent build: a real failure
                raise
    finally:
        shutil.rmtree(build_dir, ignore_errors=True)


def _overlay(
    root: Path, env: PythonEnv, *, uv: str | None, timeout_s: float, emit: EventSink
) -> tuple[Path, str] | None:
    """This tree's layer over the base env, with the project installed editable (no deps):
    reused while the tree, the base env and the build files stay the same. None when the
    project cannot be built (remembered until its build files change)."""
    overlays = env.path.parent / "overlays"
    overlays.mkdir(parents=True, exist_ok=True)
    _remove_orphan_overlays(overlays)
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:16]
    final = overlays / f"{env.key}-{digest}"
    inputs = _build_inputs_hash(root)
    marker = _read_marker(final / OVERLAY_MARKER)
    if marker.get("root") == str(root) and marker.get("inputs") == inputs:
        if not marker.get("project"):
            return None  # failed before with these very build files; said so then
        if _bin(final).is_dir():
            return final, str(marker["project"])
    shutil.rmtree(final, ignore_errors=True)
    uv_path = uv or require_tool("uv", "install the project into its test environment")
    started = time.monotonic()
    project = ""
    try:
        _uv(
            [uv_path, "venv", "--quiet", "--relocatable", "--python", str(env.python), str(final)],
            cwd=overlays,
            timeout_s=timeout_s,
            emit=emit,
            what="create the project's layer",
        )
        # A .pth line starting with `import` runs at start-up: addsitedir also processes the
        # base env's own .pth files (namespace packages, editable dependencies).
        (_site_packages(final) / "_council_base.pth").write_text(
            f"import site; site.addsitedir({str(_site_packages(env.path))!r})\n",
            encoding="utf-8",
        )
        project = _from_template(env.path, final, root, inputs)
        if not project:
            python = str(_bin(final) / "python")
            with _tree_untouched(root):
                _uv(
                    [uv_path, "pip", "install", "--no-deps", "--python", python, "-e", str(root)],
                    cwd=root,
                    timeout_s=timeout_s,
                    emit=emit,
                    what="install the project",
                )
            project = _installed_from(final, root)
    except ToolchainError as exc:
        shutil.rmtree(final, ignore_errors=True)
        final.mkdir(parents=True)
        emit(
            Notice(
                level="warning",
                message="python env: the project could not be installed, so its tests run from "
                f"the tree uninstalled: {_gist(exc.message)}",
            )
        )
    record = {"root": str(root), "base": env.key, "inputs": inputs, "project": project}
    (final / OVERLAY_MARKER).write_text(json.dumps(record, indent=2), encoding="utf-8")
    if not project:
        return None
    took = time.monotonic() - started
    emit(Notice(message=f"python env {env.key}: {project} installed for this tree in {took:.1f}s"))
    return final, project


def pythonpath_for(root: Path) -> list[Path]:
    """Import roots for running the work tree's code uninstalled: src/ (src layout), then root."""
    src = root / "src"
    if src.is_dir() and any(
        child.suffix == ".py" or (child / "__init__.py").is_file() for child in src.iterdir()
    ):
        return [src, root]
    return [root]


def _reused(env: PythonEnv) -> PythonEnv:
    return dataclasses.replace(env, reused=True)


def _usable(path: Path) -> bool:
    # exists() follows the interpreter symlink: a removed base Python makes the env unusable.
    return (path / MARKER).is_file() and PythonEnv(path=path, key="").python.exists()


def _bin(env_path: Path) -> Path:
    return env_path / ("Scripts" if os.name == "nt" else "bin")


def _site_packages(env_path: Path) -> Path:
    found = sorted(env_path.glob("lib/python*/site-packages")) or [env_path / "Lib/site-packages"]
    return found[0]


def _read_marker(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


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


def _project_requirements(
    project: dict[str, object], wanted: list[str]
) -> tuple[list[str], list[str]]:
    """[project] dependencies plus those of the `wanted` extras (test extras, extras the
    project names itself with), following `name[extra]` self-references; and the extras used."""
    name = _normalise(str(project.get("name", "")))
    optional = project.get("optional-dependencies") or {}
    if not isinstance(optional, dict):
        optional = {}
    wanted = [extra for extra in wanted if extra in optional]
    seen: set[str] = set()
    out = [str(r) for r in project.get("dependencies") or [] if isinstance(r, str)]
    while wanted:
        extra = wanted.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for req in optional.get(extra) or []:
            parsed = _requirement(str(req))
            if parsed and name and _normalise(parsed.name) == name:
                wanted += sorted(parsed.extras)
                continue
            out.append(str(req))
    return out, sorted(seen)


def _self_extras(line: str, name: str, root: Path) -> list[str] | None:
    """The extras a requirement asks of the project itself (`name[a,b]`, `-e .[a]`, `.`,
    `./`, `file:.`), or None when it names something else."""
    text = line.split(" #", 1)[0].strip()
    text = _EDITABLE.sub("", text, count=1).strip()
    if not text or text.startswith("-"):
        return None
    target = text.split(";", 1)[0].strip()  # environment markers
    if "@" in target:  # `name @ file:///...` or `name[x] @ ./`: the name decides
        target = target.split("@", 1)[0].strip()
    else:
        match = _PATH_EXTRAS.match(target)
        path = (match.group("path") if match else target).removeprefix("file:")
        if path.startswith((".", "/")) or path.startswith("file:"):
            try:
                same = (root / path).resolve() == root.resolve()
            except OSError:
                same = False
            if not same:
                return None
            extras = (match.group("extras") if match else None) or ""
            return [e.strip() for e in extras.split(",") if e.strip()]
    parsed = _requirement(target)
    if parsed is None or not name or _normalise(parsed.name) != name:
        return None
    return sorted(parsed.extras)


def _setup_cfg_name(root: Path) -> str:
    """The normalised `[metadata] name` of setup.cfg, or ""."""
    path = root / "setup.cfg"
    if not path.is_file():
        return ""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(path.read_text(encoding="utf-8", errors="replace"))
    except configparser.Error:
        return ""
    return _normalise(parser.get("metadata", "name", fallback="").strip())


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
    """Use a requirements file (and what it includes): hash it, note the project's extras it
    asks for."""
    if path not in deps.files:
        deps.files.append(path)
    for current in _hash_file(deps, path, root):
        for line in current.read_text(encoding="utf-8", errors="replace").splitlines():
            extras = _self_extras(line, deps.name, root)
            if extras is not None:
                deps.extras += extras


def _hash_file(deps: Dependencies, path: Path, root: Path) -> list[Path]:
    """Hash a requirements-like file with everything it includes (-r / -c); the files read."""
    read: list[Path] = []
    pending = [path]
    while pending:
        current = pending.pop()
        label = _label(current, root)
        if label in deps.hashed or not current.is_file():
            continue
        text = current.read_text(encoding="utf-8", errors="replace")
        deps.hashed[label] = text
        read.append(current)
        if current.suffix == ".txt":
            for line in text.splitlines():
                match = _REQ_INCLUDE.match(line)
                if match:
                    pending.append((current.parent / match.group(1)).resolve())
    return read


def _without_self(path: Path, deps: Dependencies, root: Path, scratch: Path) -> Path:
    """`path`, or a copy without its lines naming the project (the project's own install
    covers them); includes in the copy point back at the originals."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    if not any(_self_extras(line, deps.name, root) is not None for line in lines):
        return path
    kept = []
    for line in lines:
        if _self_extras(line, deps.name, root) is not None:
            continue
        match = _REQ_INCLUDE.match(line)
        if match:
            line = line.replace(match.group(1), str((path.parent / match.group(1)).resolve()))
        kept.append(line)
    copy = scratch / f"{len(list(scratch.glob('*.txt')))}-{path.name}"
    copy.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return copy


def _static_requirements(deps: Dependencies) -> list[str]:
    """When the project cannot be installed: what its build backend reports as dependencies
    (uv reads pyproject.toml / setup.py as requirement sources)."""
    return [arg for path in deps.backend_files for arg in ("-r", str(path))]


def _save_template(venv: Path, root: Path, project: str) -> None:
    """Keep the files of the project's editable install (they are small: a .pth or a finder
    module, its dist-info, console scripts), so another tree gets its own install by copying
    them with the tree's path changed, instead of a build. Not for compiled projects: their
    extension modules are built for one tree."""
    info = _dist_info(venv, root)
    if info is None or _compiled(root):
        return
    site = _site_packages(venv)
    template = venv / TEMPLATE_DIR
    files: list[str] = []
    for line in (info / "RECORD").read_text(encoding="utf-8", errors="replace").splitlines():
        name = line.rsplit(",", 2)[0] if line.count(",") >= 2 else line
        source = Path(os.path.normpath(site / name))
        if not name or "__pycache__" in name or not source.is_file():
            continue
        if source.suffix in (".so", ".pyd", ".dylib"):
            shutil.rmtree(template, ignore_errors=True)
            return
        rel = source.relative_to(venv)
        (template / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, template / rel)
        files.append(rel.as_posix())
    record = {"root": str(root), "project": project, "inputs": _build_inputs_hash(root)}
    (template / "template.json").write_text(json.dumps({**record, "files": files}, indent=2))


def _from_template(base: Path, overlay: Path, root: Path, inputs: str) -> str:
    """Install the project into `overlay` from the base env's template, pointed at `root`;
    the project's name, or "" when there is no template for these build files."""
    template = base / TEMPLATE_DIR
    meta = _read_marker(template / "template.json")
    if not meta.get("project") or meta.get("inputs") != inputs:
        return ""
    old = str(meta["root"])
    swaps = [(Path(old).as_uri(), root.as_uri()), (old, str(root))]
    for rel in meta.get("files", []):
        source, target = template / rel, overlay / rel
        data = source.read_bytes()
        for before, after in swaps:
            data = data.replace(before.encode(), after.encode())
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        shutil.copymode(source, target)
    return str(meta["project"])


def _compiled(root: Path) -> bool:
    """Whether building the project compiles extension modules (they live in the tree)."""
    system = read_toml(root / "pyproject.toml").get("build-system")
    backend = str(system.get("build-backend", "")) if isinstance(system, dict) else ""
    if backend.startswith(("mesonpy", "scikit_build", "maturin", "setuptools_rust")):
        return True
    setup = root / "setup.py"
    text = setup.read_text(encoding="utf-8", errors="replace") if setup.is_file() else ""
    return "ext_modules" in text or "Extension(" in text


def read_toml(path: Path) -> dict:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _dist_info(venv: Path, root: Path) -> Path | None:
    """The dist-info in `venv` of the distribution installed from `root` (its
    direct_url.json says so)."""
    for info in _site_packages(venv).glob("*.dist-info"):
        url = _read_marker(info / "direct_url.json").get("url", "")
        if url and url in (root.as_uri(), f"file://{root}"):
            return info
    return None


def _installed_from(venv: Path, root: Path) -> str:
    """The name of the distribution in `venv` installed from `root`, or ""."""
    info = _dist_info(venv, root)
    if info is None:
        return ""
    metadata = (info / "METADATA").read_text(encoding="utf-8", errors="replace")
    for line in metadata.splitlines():
        if line.startswith("Name:"):
            return line.split(":", 1)[1].strip()
    return ""


def _gist(message: str) -> str:
    """The line of an installer's failure that says what broke (the last error line)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"^(?:\w+(?:Error|Exception)\b|error:)", line)]
    return (errors or lines or ["unknown error"])[-1][:300]


def _build_inputs_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for name in _BUILD_INPUTS:
        path = root / name
        digest.update(name.encode() + b"\0" + (path.read_bytes() if path.is_file() else b"-"))
    return digest.hexdigest()[:20]


@contextmanager
def _tree_untouched(root: Path) -> Iterator[None]:
    """Remove what a build backend leaves in the source tree (`*.egg-info`, a new `build/`):
    it would show in the run's diff and be committed with the change."""

    def litter() -> set[Path]:
        found = set(root.glob("*.egg-info")) | set(root.glob("*/*.egg-info"))
        return found | ({root / "build"} if (root / "build").exists() else set())

    before = litter()
    try:
        yield
    finally:
        for path in litter() - before:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)


def _remove_orphan_overlays(overlays: Path) -> None:
    """Layers of work trees that are gone (a finished run removed its worktree)."""
    now = time.time()
    for folder in overlays.iterdir():
        marker = _read_marker(folder / OVERLAY_MARKER)
        try:
            if marker:
                if not Path(str(marker.get("root", ""))).is_dir():
                    shutil.rmtree(folder, ignore_errors=True)
            elif now - folder.stat().st_mtime > _STALE_BUILD_S:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue


def _label(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def _normalise(name: str) -> str:
    return canonicalize_name(name)  # PEP 503


def _requirement(text: str) -> Requirement | None:
    """A PEP 508 requirement (name, extras, markers), or None for anything else."""
    try:
        return Requirement(text)
    except InvalidRequirement:
        return None


def _remove_stale_builds(envs: Path) -> None:
    """Builds that crashed long ago (a live build is never a day old)."""
    now = time.time()
    for leftover in envs.glob(".build-*"):
        try:
            if now - leftover.stat().st_mtime > _STALE_BUILD_S:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            continue
