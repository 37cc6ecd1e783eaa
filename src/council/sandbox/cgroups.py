"""Per-command cgroups: a process limit and a memory limit that hold as root, and say when they bit.

RLIMIT_NPROC is ignored for root and RLIMIT_DATA turns a memory hog into a MemoryError the code
may catch. Where council may create cgroups (as root, or in a delegated cgroup), each sandboxed
command gets its own: `pids.max` stops a fork bomb at N tasks, the memory limit has the kernel
kill a hog (it never sees MemoryError), and the controllers' counters (`pids.events`,
`memory.events` / `memory.oom_control` / `memory.failcnt`) say which limit was hit.

Both layouts: cgroup v2 (one hierarchy, `pids.max`, `memory.max`, `memory.events`) and the v1
hierarchies (`/sys/fs/cgroup/pids`, `/sys/fs/cgroup/memory`: `pids.max`,
`memory.limit_in_bytes`, `memory.oom_control`, `memory.failcnt`); each controller is taken from
whichever hierarchy has it here, under council's own cgroup in that hierarchy.
"""

from __future__ import annotations

import functools
import itertools
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

_PREFIX = "council-"
_counter = itertools.count()


@dataclass(frozen=True)
class Controller:
    """Where child cgroups for one controller are made: `parent` is council's own cgroup."""

    name: str  # pids | memory
    parent: Path
    v2: bool


@dataclass(frozen=True)
class CgroupSupport:
    pids: Controller | None = None
    memory: Controller | None = None
    why: str = ""  # why a controller is missing, for the notice

    @property
    def complete(self) -> bool:
        return self.pids is not None and self.memory is not None


def _unescape(field_: str) -> str:
    return field_.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n")


def _mounts(mountinfo: str) -> list[tuple[str, str, str, set[str]]]:
    """(fstype, mount point, root within the hierarchy, super options) of cgroup mounts."""
    found = []
    for line in mountinfo.splitlines():
        head, sep, tail = line.partition(" - ")
        if not sep:
            continue
        fields, after = head.split(), tail.split()
        if len(fields) < 5 or len(after) < 3 or after[0] not in ("cgroup", "cgroup2"):
            continue
        found.append(
            (after[0], _unescape(fields[4]), _unescape(fields[3]), set(after[2].split(",")))
        )
    return found


def _own_paths(proc_cgroup: str) -> dict[str, str]:
    """Controller name (or "" for v2) -> this process's cgroup path, from /proc/self/cgroup."""
    paths: dict[str, str] = {}
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for name in parts[1].split(",") if parts[1] else [""]:
            paths[name] = parts[2]
    return paths


def _under(mount: str, root: str, path: str) -> Path:
    rel = os.path.relpath(path, root) if root != "/" else path.lstrip("/")
    return Path(mount) / ("" if rel == "." else rel)


def _usable(parent: Path) -> bool:
    """Can we make (and remove) a child cgroup here? Tried, not guessed from permissions."""
    probe = parent / f"{_PREFIX}probe-{os.getpid()}"
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError:
        return False
    return True


def _enable_v2(parent: Path, name: str) -> str:
    """Switch `name` on for children of `parent` (v2); an error text when it cannot be."""
    try:
        if name in (parent / "cgroup.subtree_control").read_text().split():
            return ""
        (parent / "cgroup.subtree_control").write_text(f"+{name}")
    except OSError as exc:
        # EBUSY: our own cgroup holds processes, and v2 allows controllers only on leaves.
        return f"cgroup v2 would not enable {name} under {parent} ({exc.strerror})"
    return ""


def detect(mountinfo: str, proc_cgroup: str) -> CgroupSupport:
    """Which controllers council can use, from the text of mountinfo and /proc/self/cgroup."""
    own = _own_paths(proc_cgroup)
    chosen: dict[str, Controller] = {}
    problems: list[str] = []
    mounts = _mounts(mountinfo)
    for name in ("pids", "memory"):
        for fstype, point, root, options in mounts:
            if fstype == "cgroup" and name in options and name in own:
                parent = _under(point, root, own[name])
                if _usable(parent):
                    chosen[name] = Controller(name, parent, v2=False)
                else:
                    problems.append(f"cannot create cgroups in {parent}")
                break
        if name in chosen:
            continue
        for fstype, point, root, _options in mounts:
            if fstype != "cgroup2" or "" not in own:
                continue
            parent = _under(point, root, own[""])
            try:
                available = (parent / "cgroup.controllers").read_text().split()
            except OSError:
                available = []
            if name not in available:
                continue
            problem = _enable_v2(parent, name) or ("" if _usable(parent) else "not writable")
            if problem:
                problems.append(problem)
            else:
                chosen[name] = Controller(name, parent, v2=True)
            break
    missing = [n for n in ("pids", "memory") if n not in chosen]
    why = ""
    if missing:
        why = f"no {' or '.join(missing)} cgroup controller council may use"
        if problems:
            why += f" ({'; '.join(dict.fromkeys(problems))})"
    return CgroupSupport(chosen.get("pids"), chosen.get("memory"), why)


@functools.cache
def support() -> CgroupSupport:
    """What this machine offers, probed once per process; nothing off Linux."""
    try:
        mountinfo = Path("/proc/self/mountinfo").read_text()
        proc_cgroup = Path("/proc/self/cgroup").read_text()
    except OSError:
        return CgroupSupport(why="no cgroups on this system")
    found = detect(mountinfo, proc_cgroup)
    _sweep(found)
    return found


def _sweep(found: CgroupSupport) -> None:
    """Remove empty cgroups left by a council process that was killed before its cleanup."""
    for ctl in (found.pids, found.memory):
        if ctl is None:
            continue
        try:
            entries = list(ctl.parent.iterdir())
        except OSError:
            continue
        for entry in entries:
            owner = entry.name[len(_PREFIX) :].split("-", 1)[0]
            if entry.name.startswith(_PREFIX) and owner.isdigit():
                if not Path(f"/proc/{owner}").exists():
                    try:
                        entry.rmdir()
                    except OSError:
                        pass  # still holds processes: leave it alone


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _counter_value(text: str, key: str) -> int | None:
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key and parts[1].isdigit():
            return int(parts[1])
    return None


@dataclass
class CommandCgroup:
    """The cgroup(s) one command runs in; made by `create()`, removed by `close()`."""

    nproc: int
    memory_mb: int
    dirs: dict[str, Path] = field(default_factory=dict)  # controller -> its cgroup directory
    v2: dict[str, bool] = field(default_factory=dict)

    @property
    def procs_files(self) -> list[str]:
        """Where the command's first process writes its pid (once per distinct directory)."""
        return [str(d / "cgroup.procs") for d in dict.fromkeys(self.dirs.values())]

    def limit_reached(self) -> str:
        """The message for a limit the command hit, or "" (cheap: read on every poll)."""
        pids = self.dirs.get("pids")
        if pids is not None and (_counter_value(_read(pids / "pids.events"), "max") or 0) > 0:
            return f"process limit of {self.nproc} reached"
        mem = self.dirs.get("memory")
        if mem is not None:
            if self.v2.get("memory"):
                killed = _counter_value(_read(mem / "memory.events"), "oom_kill")
            else:
                killed = _counter_value(_read(mem / "memory.oom_control"), "oom_kill")
                if killed is None:  # kernels before 4.13 have no oom_kill count here
                    failcnt = _read(mem / "memory.failcnt").strip()
                    killed = int(failcnt) if failcnt.isdigit() else 0
            if killed:
                return f"memory limit of {self.memory_mb} MB reached"
        return ""

    def kill(self) -> None:
        """SIGKILL everything in the cgroup, including what escaped the process group."""
        for name, path in self.dirs.items():
            if self.v2.get(name) and (path / "cgroup.kill").exists():
                try:
                    (path / "cgroup.kill").write_text("1")
                    continue
                except OSError:
                    pass
            # v1 (or an old v2 kernel): kill what is listed until nothing is; a fork bomb is
            # capped by pids.max, so this ends.
            for _ in range(1000):
                pids = [int(p) for p in _read(path / "cgroup.procs").split() if p.isdigit()]
                if not pids:
                    break
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                time.sleep(0.001)

    def close(self) -> None:
        """Kill what is left and remove the cgroup directories."""
        self.kill()
        for path in dict.fromkeys(self.dirs.values()):
            for _ in range(200):  # dying tasks leave the cgroup a moment after SIGKILL
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    self.kill()
                    time.sleep(0.005)


def _write(path: Path, value: str) -> bool:
    try:
        path.write_text(value)
    except OSError:
        return False
    return True


def create(nproc: int, memory_mb: int, found: CgroupSupport | None = None) -> CommandCgroup | None:
    """A fresh cgroup with the limits set, or None where cgroups are unavailable."""
    found = found or support()
    if found.pids is None and found.memory is None:
        return None
    group = CommandCgroup(nproc, memory_mb)
    name = f"{_PREFIX}{os.getpid()}-{next(_counter)}"
    try:
        for ctl in (found.pids, found.memory):
            if ctl is None or (ctl.name == "pids" and not nproc):
                continue
            if ctl.name == "memory" and not memory_mb:
                continue
            path = ctl.parent / name
            path.mkdir(exist_ok=True)
            group.dirs[ctl.name], group.v2[ctl.name] = path, ctl.v2
            if ctl.name == "pids":
                if not _write(path / "pids.max", str(nproc)):
                    raise OSError(f"cannot set {path}/pids.max")
            elif ctl.v2:
                size = str(memory_mb * 1024 * 1024)
                if not _write(path / "memory.max", size):
                    raise OSError(f"cannot set {path}/memory.max")
                _write(path / "memory.swap.max", "0")  # no escaping the limit into swap
            else:
                size = str(memory_mb * 1024 * 1024)
                if not _write(path / "memory.limit_in_bytes", size):
                    raise OSError(f"cannot set {path}/memory.limit_in_bytes")
                _write(path / "memory.memsw.limit_in_bytes", size)  # only with swap accounting
    except OSError:
        group.close()
        return None
    return group if group.dirs else None
