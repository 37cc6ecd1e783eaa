"""Deterministic recoveries that run without a model: declare a dependency, free a port council
owns, retry a gate with a longer time or memory limit.

Each returns an `ActionResult` saying whether it changed anything, what, and which commands or
signals it used; with `dry_run` it only says what it would do. Installing a declared dependency
is the toolchain's job (its env is keyed by the declarations): a result with `needs_prepare` tells
the caller to prepare the env again before re-running the gate.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import re
import signal
import time
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from council.events import EventSink, null_sink
from council.recovery.catalogue import (
    Match,
    Recovery,
    distribution_for,
    module_origin,
    npm_package_name,
)

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
    return re.sub(r"[-_.]+", "-", name).lower()


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
    _write_atomic(target, new_text)
    return ActionResult(
        action,
        True,
        f"added {requirement} to {rel}",
        files_changed=[rel],
        needs_prepare=True,
        facts=facts,
    )


def python_dependency_for_module(module: str, root: Path) -> str | None:
    """The distribution to declare for a missing module, or None when none can fix it."""
    if module_origin(module, root) != "dependency":
        return None
    return distribution_for(module)


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
            match = _REQ_NAME.match(str(item))
            if match:
                found.setdefault(canonical_name(match.group(1)), "pyproject.toml")
    for path in sorted(root.glob("requirements*.txt")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            line = line.split("#", 1)[0]
            match = _REQ_NAME.match(line)
            if match and not line.lstrip().startswith("-"):
                found.setdefault(canonical_name(match.group(1)), path.name)
    return found


def _safe_specifier(spec: str) -> bool:
    return bool(
        re.fullmatch(r"\s*(?:[<>=!~]=?|===)\s*[\w.*+!-]+(?:\s*,\s*[<>=!~]=?\s*[\w.*+!-]+)*", spec)
    )


def _requirements_file(root: Path) -> Path:
    if (root / "requirements.txt").is_file():
        return root / "requirements.txt"
    others = sorted(p for p in root.glob("requirements*.txt") if "dev" not in p.name)
    return others[0] if others else root / "requirements.txt"


def _code_mask(text: str) -> list[bool]:
    """True for each character of TOML that is code: not inside a string or a comment."""
    mask = [True] * len(text)
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "#":
            end = text.find("\n", i)
            end = n if end == -1 else end
            mask[i:end] = [False] * (end - i)
            i = end
        elif ch in "\"'":
            triple = text.startswith(ch * 3, i)
            quote = ch * 3 if triple else ch
            j = i + len(quote)
            while j < n:
                if ch == '"' and text[j] == "\\":
                    j += 2
                    continue
                if text.startswith(quote, j):
                    break
                if not triple and text[j] == "\n":
                    break  # unterminated: let tomllib complain later
                j += 1
            end = min(n, j + len(quote))
            mask[i:end] = [False] * (end - i)
            i = end
        else:
            i += 1
    return mask


_HEADER = re.compile(r"^[ \t]*\[(?!\[)[ \t]*([^\]\n]+?)[ \t]*\][ \t]*(?:#.*)?$", re.MULTILINE)
_DEPS_KEY = re.compile(r"^[ \t]*dependencies[ \t]*=[ \t]*\[", re.MULTILINE)


def add_to_pyproject(text: str, requirement: str) -> str | None:
    """`text` with `requirement` appended to [project].dependencies, or None when that cannot be
    done safely (no [project] table, dynamic or non-array dependencies, unparsable result)."""
    if "\r\n" in text:
        edited = add_to_pyproject(text.replace("\r\n", "\n"), requirement)
        return None if edited is None else edited.replace("\n", "\r\n")
    try:
        before = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None
    project = before.get("project")
    if not isinstance(project, dict) or "dependencies" in project.get("dynamic", []):
        return None
    mask = _code_mask(text)
    depth, depth_at = 0, [0] * (len(text) + 1)
    for index, ch in enumerate(text):
        depth_at[index] = depth
        if mask[index] and ch in "[{":
            depth += 1
        elif mask[index] and ch in "]}":
            depth -= 1
    headers = [
        m
        for m in _HEADER.finditer(text)
        if mask[text.index("[", m.start())] and depth_at[m.start()] == 0
    ]
    starts = [i for i, m in enumerate(headers) if m.group(1) == "project"]
    if not starts:
        return None  # `project = {...}` inline or dotted keys: not worth a text edit
    header = headers[starts[0]]
    table_end = headers[starts[0] + 1].start() if starts[0] + 1 < len(headers) else len(text)
    body_start = header.end()
    key = None
    for candidate in _DEPS_KEY.finditer(text, body_start, table_end):
        if mask[candidate.start()] and depth_at[candidate.start()] == 0:
            key = candidate
            break
    quoted = json.dumps(requirement)
    if key is None:
        if "dependencies" in project:
            return None
        insert_at = _end_of_last_line(text, mask, body_start, table_end)
        new = text[:insert_at] + f"\ndependencies = [\n    {quoted},\n]" + text[insert_at:]
    else:
        open_at = key.end() - 1
        close_at = _matching_bracket(text, mask, open_at)
        if close_at is None:
            return None
        new = _append_item(text, mask, open_at, close_at, quoted)
    try:
        after = tomllib.loads(new)
    except tomllib.TOMLDecodeError:
        return None
    expected = dict(before)
    expected["project"] = {
        **project,
        "dependencies": [*project.get("dependencies", []), requirement],
    }
    return new if after == expected else None


def _end_of_last_line(text: str, mask: list[bool], start: int, end: int) -> int:
    """Just after the last non-blank line of a table (before the blank lines ahead of the next)."""
    last = start
    for index in range(start, end):
        if not text[index].isspace():
            last = index
    newline = text.find("\n", last)
    return end if newline == -1 or newline > end else newline


def _matching_bracket(text: str, mask: list[bool], open_at: int) -> int | None:
    depth = 0
    for index in range(open_at, len(text)):
        if not mask[index]:
            continue
        if text[index] in "[{":
            depth += 1
        elif text[index] in "]}":
            depth -= 1
            if depth == 0:
                return index
    return None


def _append_item(text: str, mask: list[bool], open_at: int, close_at: int, item: str) -> str:
    inner = range(open_at + 1, close_at)
    code = [i for i in inner if mask[i] and not text[i].isspace()]
    strings = [i for i in inner if not mask[i] and text[i] in "\"'" and (i == 0 or mask[i - 1])]
    last_code = max([*code, *strings], default=None)
    if last_code is None:  # empty array
        return text[: open_at + 1] + item + text[close_at:]
    if last_code in strings:  # the last item has no trailing comma
        last_end = _string_end(text, mask, last_code)
        needs_comma, after_last = True, last_end
    else:
        needs_comma, after_last = text[last_code] != ",", last_code + 1
    multiline = "\n" in text[after_last:close_at]
    if not multiline:
        sep = "," if needs_comma else ""
        gap = " " if text[after_last - 1] != " " else ""
        return text[:after_last] + sep + gap + item + text[after_last:]
    # One item per line: the new one goes on its own line, indented like the one before it.
    line_start = text.rfind("\n", 0, after_last) + 1
    indent = re.match(r"[ \t]*", text[line_start:]).group(0) or "    "  # type: ignore[union-attr]
    line_end = text.find("\n", after_last)
    trailing = "," if not needs_comma else ""  # keep the file's own trailing-comma habit
    head = text[:after_last] + ("," if needs_comma else "") + text[after_last:line_end]
    return head + f"\n{indent}{item}{trailing}" + text[line_end:]


def _string_end(text: str, mask: list[bool], start: int) -> int:
    index = start
    while index < len(text) and not mask[index]:
        index += 1
    return index


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
    indent_match = re.search(r"^\{\s*\n([ \t]+)\"", text)
    indent: str | int = indent_match.group(1) if indent_match else 2
    new = json.dumps(data, indent=indent, ensure_ascii=False)
    _write_atomic(path, new + ("\n" if text.endswith("\n") else ""))
    return ActionResult(
        action,
        True,
        f"added {package}@{version} to package.json {section}",
        files_changed=["package.json"],
        needs_prepare=True,
        facts=facts,
    )


# -- ports -----------------------------------------------------------------------------------

_TCP_LISTEN = "0A"


@dataclass(frozen=True)
class PortHolder:
    """A process listening on a TCP port (pid None: the socket's owner is not visible to us)."""

    pid: int | None
    cmdline: str
    address: str
    inode: int

    def render(self) -> str:
        who = f"pid {self.pid}" if self.pid is not None else "an unknown process"
        command = " ".join(self.cmdline.split())[:200] or "?"
        return f"{who} ({command}) on {self.address}"


def _listening_inodes(port: int) -> dict[int, str]:
    """inode -> address of TCP sockets listening on `port` (this network namespace)."""
    found: dict[int, str] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) < 10 or parts[3] != _TCP_LISTEN:
                continue
            address, port_hex = parts[1].rsplit(":", 1)
            if int(port_hex, 16) == port:
                found[int(parts[9])] = f"{_decode_address(address)}:{port}"
    return found


def _decode_address(hex_address: str) -> str:
    raw = bytes.fromhex(hex_address)
    if len(raw) == 4:
        return ".".join(str(b) for b in raw[::-1])
    # /proc prints IPv6 as four little-endian 32-bit words.
    flat = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return f"[{ipaddress.IPv6Address(flat)}]"


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)


def who_holds_port(port: int) -> list[PortHolder]:
    """The processes listening on TCP `port`, from /proc/net/tcp{,6} and /proc/*/fd."""
    inodes = _listening_inodes(port)
    if not inodes:
        return []
    wanted = {f"socket:[{inode}]": inode for inode in inodes}
    holders: list[PortHolder] = []
    seen: set[int] = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            fds = os.scandir(f"/proc/{pid}/fd")
        except OSError:
            continue  # another user's process, or gone
        with fds:
            for fd in fds:
                try:
                    target = os.readlink(fd.path)
                except OSError:
                    continue
                inode = wanted.get(target)
                if inode is not None and (pid, inode) not in {(h.pid, h.inode) for h in holders}:
                    holders.append(PortHolder(pid, _cmdline(pid), inodes[inode], inode))
                    seen.add(inode)
    for inode, address in inodes.items():
        if inode not in seen:
            holders.append(PortHolder(None, "", address, inode))
    return holders


def process_start_time(pid: int) -> int | None:
    """Clock ticks since boot when `pid` started: with the pid, it names one process for good."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[19])


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")  # a zombie holds no sockets


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
        for entry in self.entries():
            if entry.get("pid") == pid and entry.get("start") == start:
                return True
            # A child in the group started at or after the leader did; a reused pid number in
            # a new group would not share the group id.
            leader_start = entry.get("start")
            if entry.get("pgid") == pgid and leader_start is not None and start >= leader_start:
                return True
        return False


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
) -> ActionResult:
    """Run the deterministic recovery a catalogue match calls for, if it has one and it is safe.

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
        dist = facts.get("distribution") or python_dependency_for_module(
            facts.get("module", ""), root
        )
        if not dist:
            return ActionResult(kind.value, False, "no distribution to add", dry_run=dry_run)
        return add_python_dependency(root, dist, dry_run=dry_run)
    if kind is Recovery.ADD_NPM_DEPENDENCY:
        return add_npm_dependency(root, facts.get("package", ""), dev=dev, dry_run=dry_run)
    if kind is Recovery.FREE_PORT:
        if "port" not in facts:
            return ActionResult(
                kind.value, False, "the output does not say which port is in use", dry_run=dry_run
            )
        return free_port(
            int(facts["port"]), owned_pids=owned_pids, registry=registry, dry_run=dry_run
        )
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
