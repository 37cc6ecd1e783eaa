"""Deterministic recoveries that run without a model: declare a dependency, free a port council
owns, retry a gate with a longer time or memory limit.

Each returns an `ActionResult` saying whether it changed anything, what, and which commands or
signals it used; with `dry_run` it only says what it would do. Installing a declared dependency
is the toolchain's job (its env is keyed by the declarations): a result with `needs_prepare` tells
the caller to prepare the env again before re-running the gate.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import time
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import tomlkit
import tomlkit.exceptions
import tomlkit.items
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from council.events import EventSink, null_sink
from council.recovery.catalogue import (
    IMPORT_TO_DISTRIBUTION,
    Match,
    Recovery,
    module_origin,
    npm_package_name,
)
from council.recovery.index import index_url, resolve_import
from council.recovery.index import offline as index_offline

PEP508_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
MAX_TIMEOUT_S = 3600.0
MAX_MEMORY_MB = 16384
REGISTRY_RELATIVE_PATH = Path(".council") / "processes.jsonl"


@dataclass
class ActionResult:
    """What a recovery did (or, in a dry run, would do)."""

    action: str
    applied: bool
    description: str
    files_changed: list[str] = field(default_factory=list)
    commands_run: list[list[str]] = field(default_factory=list)
    needs_prepare: bool = False  # dependency declarations changed: build the env again
    dry_run: bool = False
    facts: dict[str, Any] = field(default_factory=dict)
    # file -> its text before the action (None: it did not exist), so it can be undone
    originals: dict[str, str | None] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "applied": self.applied,
            "description": self.description,
            "files_changed": list(self.files_changed),
            "commands_run": [list(c) for c in self.commands_run],
            "needs_prepare": self.needs_prepare,
            "dry_run": self.dry_run,
            "facts": dict(self.facts),
        }


# -- Python dependencies ---------------------------------------------------------------------


def canonical_name(name: str) -> str:
    """PEP 503 normal form: `PyYAML`, `pyyaml` and `py_yaml` name one project only if equal here."""
    return str(canonicalize_name(name))


def add_python_dependency(
    root: Path, distribution: str, *, specifier: str = "", dry_run: bool = False
) -> ActionResult:
    """Declare `distribution` in pyproject's [project].dependencies, else in requirements.txt.

    The TOML is edited as text (comments, order and layout stay) and the edit is re-parsed to
    prove only that one entry changed. Nothing is installed here: `needs_prepare` asks the caller
    to let the toolchain build the env again.
    """
    action = "add_python_dependency"
    if not PEP508_NAME.match(distribution) or (specifier and not _safe_specifier(specifier)):
        return ActionResult(action, False, f"refused: {distribution!r} is not a package name")
    requirement = distribution + specifier
    declared = declared_python_dependencies(root)
    where = declared.get(canonical_name(distribution))
    if where:
        return ActionResult(
            action,
            False,
            f"{distribution} is already declared in {where}; the env may need building again",
            needs_prepare=True,
            dry_run=dry_run,
            facts={"distribution": distribution, "file": where},
        )

    pyproject = root / "pyproject.toml"
    target: Path | None = None
    new_text: str | None = None
    if pyproject.is_file():
        new_text = add_to_pyproject(_read(pyproject), requirement)
        target = pyproject if new_text is not None else None
    if target is None:
        target = _requirements_file(root)
        old = _read(target) if target.is_file() else ""
        eol = "\r\n" if "\r\n" in old else "\n"
        new_text = old + ("" if not old or old.endswith("\n") else eol) + requirement + eol
    assert new_text is not None
    rel = target.relative_to(root).as_posix()
    facts = {"distribution": distribution, "requirement": requirement, "file": rel}
    if dry_run:
        return ActionResult(
            action, False, f"would add {requirement} to {rel}", dry_run=True, facts=facts
        )
    original = _read(target) if target.is_file() else None
    _write_atomic(target, new_text)
    return ActionResult(
        action,
        True,
        f"added {requirement} to {rel}",
        files_changed=[rel],
        needs_prepare=True,
        facts=facts,
        originals={rel: original},
    )


def python_dependency_for_module(module: str, root: Path) -> str | None:
    """The distribution to declare for a missing module: the catalogue's table, else the package
    index's answer; None when none can fix it (the project's own module) or nobody knows."""
    if module_origin(module, root) != "dependency":
        return None
    resolved = resolve_import(module, IMPORT_TO_DISTRIBUTION)
    return resolved.distribution if resolved is not None else None


def declared_python_dependencies(root: Path) -> dict[str, str]:
    """Canonical name -> the file declaring it (pyproject deps, extras, groups, requirements)."""
    found: dict[str, str] = {}
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            data = {}
        project = data.get("project") if isinstance(data.get("project"), dict) else {}
        requirements: list[Any] = list(project.get("dependencies") or [])
        for extra in (project.get("optional-dependencies") or {}).values():
            requirements += list(extra or [])
        for group in (data.get("dependency-groups") or {}).values():
            requirements += [item for item in group or [] if isinstance(item, str)]
        for item in requirements:
            name = _requirement_name(str(item))
            if name:
                found.setdefault(name, "pyproject.toml")
    for path in sorted(root.glob("requirements*.txt")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            line = line.split("#", 1)[0]
            match = _REQ_NAME.match(line)
            if match and not line.lstrip().startswith("-"):
                found.setdefault(canonical_name(match.group(1)), path.name)
    return found


def _safe_specifier(spec: str) -> bool:
    try:
        SpecifierSet(spec)
    except InvalidSpecifier:
        return False
    return True


def _requirements_file(root: Path) -> Path:
    if (root / "requirements.txt").is_file():
        return root / "requirements.txt"
    others = sorted(p for p in root.glob("requirements*.txt") if "dev" not in p.name)
    return others[0] if others else root / "requirements.txt"


def add_to_pyproject(text: str, requirement: str) -> str | None:
    """`text` with `requirement` appended to [project].dependencies, or None when that cannot be
    done safely (no [project] table, dynamic or non-array dependencies, unparsable result).

    tomlkit edits the document in place, so comments, order, quoting and layout all stay."""
    return _edit_dependencies(text, lambda deps: [*deps, requirement])


def replace_in_pyproject(text: str, name: str, requirement: str) -> str | None:
    """`text` with the [project].dependencies entry for `name` replaced by `requirement`."""

    def swap(deps: list[str]) -> list[str] | None:
        hits = [i for i, d in enumerate(deps) if _requirement_name(d) == canonical_name(name)]
        if len(hits) != 1:
            return None
        return [requirement if i == hits[0] else d for i, d in enumerate(deps)]

    return _edit_dependencies(text, swap)


def _edit_dependencies(text: str, change: Callable[[list[str]], list[str] | None]) -> str | None:
    try:
        before = tomllib.loads(text)
        doc = tomlkit.parse(text)
    except (tomllib.TOMLDecodeError, tomlkit.exceptions.TOMLKitError):
        return None
    project = before.get("project")
    if not isinstance(project, dict) or "dependencies" in project.get("dynamic", []):
        return None
    table = doc.get("project")
    if not isinstance(table, tomlkit.items.Table) or table.is_super_table():
        return None  # `project = {...}` inline or dotted keys: not worth an edit
    current = project.get("dependencies", [])
    if not isinstance(current, list) or not all(isinstance(d, str) for d in current):
        return None
    wanted = change(list(current))
    if wanted is None:
        return None
    deps = table.get("dependencies")
    if deps is None:
        deps = tomlkit.array()
        deps.multiline(True)
        table.add("dependencies", deps)
    elif not isinstance(deps, tomlkit.items.Array):
        return None
    for index, item in enumerate(wanted):
        if index < len(deps):
            if deps[index] != item:
                deps[index] = item
        else:
            deps.append(item)
    new = tomlkit.dumps(doc)
    try:
        after = tomllib.loads(new)
    except tomllib.TOMLDecodeError:
        return None
    # Prove that only that one entry changed.
    expected = {**before, "project": {**project, "dependencies": wanted}}
    return new if after == expected else None


def _requirement_name(text: str) -> str:
    try:
        return canonical_name(Requirement(text).name)
    except InvalidRequirement:
        match = _REQ_NAME.match(text)
        return canonical_name(match.group(1)) if match else ""


# -- npm dependencies ------------------------------------------------------------------------

NPM_SECTIONS = ("dependencies", "devDependencies", "peerDependencies", "optionalDependencies")


def add_npm_dependency(
    root: Path,
    package: str,
    *,
    dev: bool = False,
    version: str = "latest",
    dry_run: bool = False,
) -> ActionResult:
    """Declare `package` in package.json (devDependencies when `dev`), keeping its indentation.

    The version defaults to the `latest` dist-tag: the toolchain's install resolves it and pins
    it in the lockfile (`needs_prepare`).
    """
    action = "add_npm_dependency"
    name = npm_package_name(package)
    if name is None or name != package:
        return ActionResult(action, False, f"refused: {package!r} is not an npm package name")
    if not re.fullmatch(r"[\w.^~<>=*| -]+", version):
        return ActionResult(action, False, f"refused: {version!r} is not a version range")
    path = root / "package.json"
    if not path.is_file():
        return ActionResult(action, False, "no package.json in the project")
    text = _read(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return ActionResult(action, False, f"package.json is not valid JSON: {exc}")
    if not isinstance(data, dict):
        return ActionResult(action, False, "package.json is not an object")
    for section in NPM_SECTIONS:
        if isinstance(data.get(section), dict) and package in data[section]:
            return ActionResult(
                action,
                False,
                f"{package} is already declared in package.json {section}; "
                "the install may need running again",
                needs_prepare=True,
                dry_run=dry_run,
                facts={"package": package, "section": section},
            )
    section = "devDependencies" if dev else "dependencies"
    facts = {"package": package, "section": section, "version": version, "file": "package.json"}
    if dry_run:
        return ActionResult(
            action,
            False,
            f"would add {package}@{version} to package.json {section}",
            dry_run=True,
            facts=facts,
        )
    entries = dict(data.get(section) or {})
    entries[package] = version
    data[section] = dict(sorted(entries.items()))  # npm keeps these sorted itself
    _write_package_json(path, text, data)
    return ActionResult(
        action,
        True,
        f"added {package}@{version} to package.json {section}",
        files_changed=["package.json"],
        needs_prepare=True,
        facts=facts,
        originals={"package.json": text},
    )


def _write_package_json(path: Path, old_text: str, data: dict[str, Any]) -> None:
    indent_match = re.search(r"^\{\s*\n([ \t]+)\"", old_text)
    indent: str | int = indent_match.group(1) if indent_match else 2
    new = json.dumps(data, indent=indent, ensure_ascii=False)
    _write_atomic(path, new + ("\n" if old_text.endswith("\n") else ""))


# -- after the install: pin what was installed, or undo the declaration -----------------------


def compatible_range(version: str) -> str:
    """A PEP 440 range around an installed version that takes its fixes but not its next
    breaking release: 6.0.3 -> `>=6.0,<7`; 0.15.2 -> `>=0.15,<0.16`."""
    v = Version(version)
    if v.major > 0:
        return f">={v.major}.{v.minor},<{v.major + 1}"
    return f">=0.{v.minor},<0.{v.minor + 1}"


def installed_version(env: Any, name: str) -> str | None:
    """The version of `name` installed in a prepared env: a Python venv (its dist-info) or a
    node_modules (the package's package.json)."""
    node_modules = getattr(env, "node_modules", None)
    if isinstance(node_modules, Path):
        try:
            data = json.loads((node_modules / name / "package.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        version = data.get("version") if isinstance(data, dict) else None
        return version if isinstance(version, str) else None
    venv = getattr(env, "path", None)
    if not isinstance(venv, Path):
        return None
    wanted = canonical_name(name)
    for dist_info in venv.glob("lib*/python*/site-packages/*.dist-info"):
        project, _, version = dist_info.name.removesuffix(".dist-info").rpartition("-")
        if canonical_name(project) == wanted:
            return version
    return None


def pin_python_dependency(root: Path, distribution: str, version: str) -> ActionResult:
    """Rewrite the declaration of `distribution` to the compatible range of `version`."""
    action = "pin_python_dependency"
    try:
        requirement = distribution + compatible_range(version)
    except InvalidVersion:
        return ActionResult(action, False, f"{version!r} is not a version to pin to")
    where = declared_python_dependencies(root).get(canonical_name(distribution))
    if where is None:
        return ActionResult(action, False, f"{distribution} is not declared")
    path = root / where
    text = _read(path)
    if where == "pyproject.toml":
        new = replace_in_pyproject(text, distribution, requirement)
    else:
        lines = text.splitlines(keepends=True)
        hits = [i for i, ln in enumerate(lines) if _requirement_name(ln.split("#")[0].strip())
                == canonical_name(distribution)]  # fmt: skip
        new = None
        if len(hits) == 1:
            eol = lines[hits[0]][len(lines[hits[0]].rstrip("\r\n")) :]
            lines[hits[0]] = requirement + eol
            new = "".join(lines)
    if new is None:
        return ActionResult(action, False, f"cannot rewrite the declaration of {distribution}")
    if new != text:
        _write_atomic(path, new)
    return ActionResult(
        action,
        True,
        f"pinned {requirement} (installed {version}) in {where}",
        files_changed=[where],
        needs_prepare=True,
        facts={"distribution": distribution, "requirement": requirement, "installed": version},
        originals={where: text},
    )


def pin_npm_dependency(root: Path, package: str, version: str) -> ActionResult:
    """Rewrite `package`'s range in package.json to `^version` (what npm writes itself)."""
    action = "pin_npm_dependency"
    path = root / "package.json"
    if not re.fullmatch(r"\d+\.\d+\.\d+[\w.+-]*", version):
        return ActionResult(action, False, f"{version!r} is not a version to pin to")
    try:
        text = _read(path)
        data = json.loads(text)
    except (OSError, ValueError):
        return ActionResult(action, False, "package.json cannot be read")
    for section in NPM_SECTIONS:
        entries = data.get(section) if isinstance(data, dict) else None
        if isinstance(entries, dict) and package in entries:
            entries[package] = f"^{version}"
            _write_package_json(path, text, data)
            return ActionResult(
                action,
                True,
                f"pinned {package}@^{version} in package.json {section}",
                files_changed=["package.json"],
                needs_prepare=True,
                facts={"package": package, "range": f"^{version}", "installed": version},
                originals={"package.json": text},
            )
    return ActionResult(action, False, f"{package} is not declared in package.json")


def undo(root: Path, result: ActionResult) -> None:
    """Put back every file an action changed, as it was before."""
    for rel, text in result.originals.items():
        path = root / rel
        if text is None:
            path.unlink(missing_ok=True)
        else:
            _write_atomic(path, text)


# -- ports -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PortHolder:
    """A process listening on a TCP port (pid None: the socket's owner is not visible to us)."""

    pid: int | None
    cmdline: str
    address: str
    parents: tuple[str, ...] = ()  # its parent processes, nearest first ("pid 12 (bash)")

    def render(self) -> str:
        who = f"pid {self.pid}" if self.pid is not None else "an unknown process"
        command = " ".join(self.cmdline.split())[:200] or "?"
        tree = f", started by {' < '.join(self.parents)}" if self.parents else ""
        return f"{who} ({command}) on {self.address}{tree}"


def _address(laddr: Any) -> str:
    host = laddr.ip
    return f"[{host}]:{laddr.port}" if ":" in host else f"{host}:{laddr.port}"


def _cmdline(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline()) or process.name()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return ""


def _ancestry(process: psutil.Process, depth: int = 3) -> tuple[str, ...]:
    """Who started the holder (a test runner's child, a service manager's daemon), nearest first."""
    try:
        parents = process.parents()[:depth]
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return ()
    out = []
    for parent in parents:
        try:
            out.append(f"pid {parent.pid} ({parent.name()})")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return tuple(out)


def who_holds_port(port: int) -> list[PortHolder]:
    """The processes listening on TCP `port` in this network namespace, with their parents."""
    holders: list[PortHolder] = []
    seen: set[tuple[int | None, str]] = set()
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        connections = []
    for conn in connections:
        if conn.status != psutil.CONN_LISTEN or not conn.laddr or conn.laddr.port != port:
            continue
        address = _address(conn.laddr)
        if (conn.pid, address) in seen:
            continue
        seen.add((conn.pid, address))
        if conn.pid is None:
            holders.append(PortHolder(None, "", address))
            continue
        try:
            process = psutil.Process(conn.pid)
        except psutil.NoSuchProcess:
            continue
        holders.append(PortHolder(conn.pid, _cmdline(process), address, _ancestry(process)))
    return holders


# Port numbers in code: `PORT = 8765`, `bind(("127.0.0.1", 8765))`, `port=8765`, `:8765`,
# `listen(8765)`. What a test binds when the error ("Address already in use") names no port.
_PORT_IN_SOURCE = re.compile(
    r"(?i)(?:\bport\w*\s*[=:]\s*|\bport\w*\s*\(\s*|[\"']\s*,\s*|listen\(\s*|localhost:|"
    r"127\.0\.0\.1:|0\.0\.0\.0:)(?P<port>\d{2,5})\b"
)
_FILE_IN_OUTPUT = re.compile(r"([\w./-]+\.(?:py|[cm]?[jt]sx?|java))\b")


def ports_in_sources(root: Path, output: str, limit: int = 20) -> list[int]:
    """Port numbers written in the files a failure's output names (its traceback's files
    first), in order of appearance; only the files inside `root`."""
    ports: list[int] = []
    top = root.resolve()
    for rel in dict.fromkeys(_FILE_IN_OUTPUT.findall(output)):
        path = (root / rel) if not rel.startswith("/") else Path(rel)
        try:
            if not path.resolve().is_relative_to(top) or not path.is_file():
                continue
            text = path.read_text(encoding="utf-8", errors="replace")[:200_000]
        except OSError:
            continue
        for match in _PORT_IN_SOURCE.finditer(text):
            port = int(match.group("port"))
            if 0 < port < 65536 and port not in ports:
                ports.append(port)
        if len(ports) >= limit:
            break
    return ports[:limit]


def port_in_use_for(root: Path, output: str) -> int | None:
    """The port an "Address already in use" without a number was about: the first port the
    failing code names that something listens on now."""
    for port in ports_in_sources(root, output):
        if who_holds_port(port):
            return port
    return None


def process_start_time(pid: int) -> float | None:
    """When `pid` started (seconds since the epoch): with the pid, it names one process."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.NoSuchProcess:
        return False  # a zombie holds no sockets; a reaped process holds nothing


class ProcessRegistry:
    """The processes council started (servers, sandboxes), in a JSON-lines file.

    An entry is (pid, process group, start time): a pid the kernel reused for someone else's
    process does not match, because its start time differs.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def for_repo(cls, repo: Path) -> ProcessRegistry:
        return cls(Path(repo) / REGISTRY_RELATIVE_PATH)

    def record(self, pid: int, argv: Sequence[str] = ()) -> None:
        """Remember that council started `pid` (and, through its group, what it spawns)."""
        try:
            pgid = os.getpgid(pid)
        except ProcessLookupError:
            return
        entry = {
            "pid": pid,
            "pgid": pgid,
            "start": process_start_time(pid),
            "argv": list(argv),
            "recorded_at": time.time(),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # several council processes may append at once
            handle.write(json.dumps(entry) + "\n")

    def entries(self) -> list[dict[str, Any]]:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError:
            return []
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a crash
        return out

    def owns(self, pid: int) -> bool:
        """Whether council started `pid`, or it belongs to a process group council started."""
        start = process_start_time(pid)
        if start is None:
            return False
        try:
            pgid = os.getpgid(pid)
        except ProcessLookupError:
            return False
        lineage = {pid: start}
        try:
            for parent in psutil.Process(pid).parents():
                lineage[parent.pid] = parent.create_time()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
        for entry in self.entries():
            recorded = entry.get("start")
            # The process itself or one of its ancestors (a server's worker), by pid AND start
            # time: a reused pid number is another process.
            if entry.get("pid") in lineage and _same_start(recorded, lineage[entry["pid"]]):
                return True
            # A child in the group started at or after the leader did (a daemon that left its
            # parent keeps the group); a reused pid in a new group would not share the group id.
            leader = recorded if isinstance(recorded, int | float) else None
            if entry.get("pgid") == pgid and leader is not None and start >= leader:
                return True
        return False


def _same_start(recorded: Any, actual: float) -> bool:
    return isinstance(recorded, int | float) and abs(recorded - actual) < 0.01


def free_port(
    port: int,
    *,
    owned_pids: Iterable[int] = (),
    registry: ProcessRegistry | None = None,
    dry_run: bool = False,
    grace_s: float = 3.0,
) -> ActionResult:
    """Stop what holds `port` only if council started it; otherwise say who holds it.

    Owned: a pid in `owned_pids` or one the `registry` knows. Stopping is SIGTERM, then SIGKILL
    after `grace_s`; success means the port is free afterwards.
    """
    action = "free_port"
    holders = who_holds_port(port)
    facts: dict[str, Any] = {"port": port, "holders": [h.render() for h in holders]}
    if not holders:
        return ActionResult(action, False, f"port {port} is free now", dry_run=dry_run, facts=facts)
    owned = set(owned_pids)
    foreign = [
        h
        for h in holders
        if h.pid is None or not (h.pid in owned or (registry and registry.owns(h.pid)))
    ]
    if foreign:
        who = "; ".join(h.render() for h in foreign)
        return ActionResult(
            action,
            False,
            f"port {port} is held by {who}, which council did not start: not stopping it",
            dry_run=dry_run,
            facts=facts,
        )
    pids = sorted({h.pid for h in holders if h.pid is not None})
    if dry_run:
        listed = ", ".join(str(p) for p in pids)
        return ActionResult(
            action, False, f"would stop pid {listed} (started by council) to free port {port}",
            dry_run=True, facts=facts,
        )  # fmt: skip
    commands: list[list[str]] = []
    for pid in pids:
        _signal(pid, signal.SIGTERM)
        commands.append(["kill", "-TERM", str(pid)])
    deadline = time.monotonic() + grace_s
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in pids:
        if _alive(pid):
            _signal(pid, signal.SIGKILL)
            commands.append(["kill", "-KILL", str(pid)])
    deadline = time.monotonic() + grace_s
    while who_holds_port(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    still = who_holds_port(port)
    if still:
        return ActionResult(
            action,
            False,
            f"stopped pid {', '.join(map(str, pids))} but port {port} is still held by "
            + "; ".join(h.render() for h in still),
            commands_run=commands,
            facts=facts,
        )
    return ActionResult(
        action,
        True,
        f"stopped pid {', '.join(map(str, pids))} (started by council); port {port} is free",
        commands_run=commands,
        facts=facts,
    )


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# -- retries with larger limits --------------------------------------------------------------


def retry_longer(
    gate: str,
    timeout_s: float,
    *,
    attempts: int = 0,
    factor: float = 2.0,
    max_timeout_s: float = MAX_TIMEOUT_S,
) -> ActionResult:
    """Retry a timed-out gate once with a longer limit (`facts["timeout_s"]`); not a second time."""
    action = "retry_longer"
    if attempts >= 1:
        return ActionResult(
            action, False, f"{gate} already timed out again with a longer limit: giving up"
        )
    new = min(max_timeout_s, max(timeout_s * factor, timeout_s + 1))
    if new <= timeout_s:
        return ActionResult(action, False, f"{gate} already has the longest limit ({timeout_s}s)")
    return ActionResult(
        action,
        True,
        f"retry {gate} once with a {new:g}s limit (was {timeout_s:g}s)",
        facts={"gate": gate, "timeout_s": new, "previous_timeout_s": timeout_s},
    )


def retry_more_memory(
    gate: str,
    memory_mb: int,
    *,
    attempts: int = 0,
    factor: float = 2.0,
    max_memory_mb: int = MAX_MEMORY_MB,
) -> ActionResult:
    """Retry a gate killed for memory once with a larger limit (`facts["memory_mb"]`)."""
    action = "retry_more_memory"
    if attempts >= 1:
        return ActionResult(action, False, f"{gate} ran out of memory again: giving up")
    new = min(max_memory_mb, int(memory_mb * factor))
    if new <= memory_mb:
        return ActionResult(action, False, f"{gate} already has the largest limit ({memory_mb} MB)")
    return ActionResult(
        action,
        True,
        f"retry {gate} once with {new} MB (was {memory_mb} MB)",
        facts={"gate": gate, "memory_mb": new, "previous_memory_mb": memory_mb},
    )


# -- formatter -------------------------------------------------------------------------------


def run_formatter(
    root: Path, *, dry_run: bool = False, timeout_s: float = 120.0, emit: EventSink = null_sink
) -> ActionResult:
    """`ruff format` over a Python project (the format gate's own tool), in the sandbox.

    Other languages' formatters are not run here: their drift goes to a model patch.
    """
    action = "run_formatter"
    python = (root / "pyproject.toml").is_file() or any(root.glob("*.py"))
    if not python:
        return ActionResult(action, False, "no formatter council runs for this project")
    from council.sandbox import run
    from council.toolchains.tools import find_tool

    ruff = find_tool("ruff")
    if ruff is None:
        return ActionResult(action, False, "ruff is not installed: cannot run the formatter")
    argv = [ruff, "format", "--no-cache", "--force-exclude", "--extend-exclude", ".council", "."]
    if dry_run:
        return ActionResult(action, False, "would run `ruff format .`", dry_run=True)
    result = run(argv, root, timeout_s=timeout_s, emit=emit)
    if not result.ok:
        return ActionResult(
            action, False, f"ruff format failed: {result.tail(5)}", commands_run=[argv]
        )
    return ActionResult(
        action,
        True,
        "ran `ruff format .`",
        commands_run=[["ruff", "format", "."]],
        facts={"tool": "ruff format"},
    )


# -- dispatch --------------------------------------------------------------------------------


def recover(
    match: Match,
    root: Path,
    *,
    dry_run: bool = False,
    gate: str = "",
    timeout_s: float = 300.0,
    memory_mb: int = 2048,
    attempts: int = 0,
    owned_pids: Iterable[int] = (),
    registry: ProcessRegistry | None = None,
    dev: bool = False,
    output: str = "",
) -> ActionResult:
    """Run the deterministic recovery a catalogue match calls for, if it has one and it is safe.

    `output`: the failed run's text, where a recovery looks for what the match did not name
    (the files whose source says which port a test binds).

    Recoveries that need a model (a patch) or a person (credentials, installing a tool) come back
    not applied, saying so: the caller decides what happens next.
    """
    kind = match.row.recovery
    facts = match.facts
    if not match.row.safe_without_model:
        hint = f" {match.row.hint}" if match.row.hint else ""
        needs = "a person" if kind is Recovery.REPORT else "a model patch"
        return ActionResult(
            kind.value, False, f"{match.row.description}: needs {needs}.{hint}", dry_run=dry_run
        )
    if kind is Recovery.ADD_PYTHON_DEPENDENCY:
        module = facts.get("module", "")
        dist = facts.get("distribution") or python_dependency_for_module(module, root)
        if not dist:
            top = module.split(".")[0]
            why = (
                "offline: the package index cannot be asked"
                if index_offline()
                else f"no project on the package index ({index_url()}) installs `{top}`"
            )
            return ActionResult(
                kind.value,
                False,
                f"which distribution provides `import {top}` is unknown ({why}); declare it "
                "in pyproject.toml yourself",
                dry_run=dry_run,
                facts={"module": module},
            )
        result = add_python_dependency(root, dist, dry_run=dry_run)
        result.facts.setdefault("module", module)
        return result
    if kind is Recovery.ADD_NPM_DEPENDENCY:
        return add_npm_dependency(root, facts.get("package", ""), dev=dev, dry_run=dry_run)
    if kind is Recovery.FREE_PORT:
        port = int(facts["port"]) if "port" in facts else port_in_use_for(root, output)
        if port is None:
            return ActionResult(
                kind.value,
                False,
                "the output does not say which port is in use, and no port the failing code "
                "names is held by anyone now",
                dry_run=dry_run,
            )
        result = free_port(port, owned_pids=owned_pids, registry=registry, dry_run=dry_run)
        if "port" not in facts:
            result.facts["found_in"] = "the failing code's source"
        return result
    if kind is Recovery.RETRY_LONGER:
        return _dry(retry_longer(gate or "gate", timeout_s, attempts=attempts), dry_run)
    if kind is Recovery.RETRY_MORE_MEMORY:
        return _dry(retry_more_memory(gate or "gate", memory_mb, attempts=attempts), dry_run)
    if kind is Recovery.RUN_FORMATTER:
        return run_formatter(root, dry_run=dry_run)
    return ActionResult(
        kind.value,
        False,
        f"{kind.value}: carried out by the heal loop (a re-run of the same gate)",
        dry_run=dry_run,
    )


def _dry(result: ActionResult, dry_run: bool) -> ActionResult:
    if dry_run and result.applied:
        result.applied = False
        result.dry_run = True
        result.description = "would " + result.description
    return result


def _read(path: Path) -> str:
    with open(path, encoding="utf-8", newline="") as handle:  # keep CRLF files CRLF
        return handle.read()


def _write_atomic(path: Path, text: str) -> None:
    """Write via a temp file and rename: a crash never leaves half a dependency file."""
    tmp = path.with_name(f".{path.name}.council-tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
    if path.exists():
        os.chmod(tmp, path.stat().st_mode & 0o7777)
    os.replace(tmp, path)
