"""Run one command on generated code: timeout, resource limits, no network, read-only filesystem.

Isolation comes from bubblewrap when it works, else from bare namespaces (`unshare`), else none
(see `capabilities()`); limits, the scrubbed environment, the private HOME/tmp, the timeout and the
bounded output capture apply in every case.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

from council.events import CommandRun, EventSink, Notice, null_sink
from council.paths import gateway_dir
from council.redact import redact, scrubbed_env
from council.sandbox import cgroups
from council.sandbox.capabilities import CONFINE_SCRIPT, SandboxCapabilities, capabilities
from council.sandbox.capture import DEFAULT_CAP_BYTES, TailBuffer

# Paths every run() in this context binds read-only, even inside the writable worktree.
_read_only: ContextVar[tuple[str, ...]] = ContextVar("council_sandbox_read_only", default=())

TERM_GRACE_S = 2.0  # between SIGTERM and SIGKILL on timeout
PIPE_DRAIN_S = 2.0  # how long to wait for output after the process group is gone


@dataclass
class Limits:
    """Per-process resource limits (setrlimit); 0 leaves a limit as it is.

    Where council may create cgroups (as root; see `cgroups.py`) every command runs in its own,
    and `nproc` and `memory_mb` are limits on the whole command there: a fork bomb stops at
    `nproc` tasks, a hog is killed by the kernel (it never sees a MemoryError it could catch),
    and the result says which limit was reached. Without cgroups, per process:
    - cpu_s: CPU seconds *per process* (SIGXCPU, then SIGKILL 5 s later); children start their
      own count, so the wall-clock `timeout_s` is the real bound on a whole test run.
    - memory_mb: RLIMIT_DATA (heap and private mappings, Linux >= 4.7), not RLIMIT_AS: address
      space limits break runtimes that reserve large virtual ranges (JVM, V8, Go, sanitizers).
    - nproc: RLIMIT_NPROC counts every process of the *real uid*, not just this command's, and the
      kernel ignores it for root (CAP_SYS_RESOURCE / CAP_SYS_ADMIN). For non-root we add the
      processes the user already runs, so the command gets `nproc` new ones; as root it is
      advisory only (bubblewrap's pid namespace still makes every process die with the command).
    - fsize_mb: largest file the command may write (SIGXFSZ / EFBIG beyond it).
    """

    cpu_s: int = 300
    memory_mb: int = 2048
    nproc: int = 256
    fsize_mb: int = 256


@dataclass
class CommandResult:
    argv: list[str]
    cwd: str
    exit_code: int | None  # None when the command died from a signal (see `signal`)
    duration_s: float
    stdout: str
    stderr: str
    timed_out: bool = False
    signal: int | None = None
    network_isolated: bool = False
    fs_isolated: bool = False
    backend: str = "none"
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    @property
    def output(self) -> str:
        if self.stdout and self.stderr and not self.stdout.endswith("\n"):
            return f"{self.stdout}\n{self.stderr}"
        return self.stdout + self.stderr

    def tail(self, n_lines: int = 40) -> str:
        lines = self.output.rstrip("\n").splitlines()
        return "\n".join(lines[-n_lines:])


def _user_process_count(uid: int) -> int:
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                count += entry.stat().st_uid == uid
            except OSError:
                continue
    return count


def _rlimits(limits: Limits, memory_cgroup: bool = False) -> list[tuple[int, tuple[int, int]]]:
    """(resource, (soft, hard)) pairs, computed before fork so the child only calls setrlimit."""
    wanted: list[tuple[int, int, int]] = []  # (resource, soft, hard)
    if limits.cpu_s:
        wanted.append((resource.RLIMIT_CPU, limits.cpu_s, limits.cpu_s + 5))
    # With a memory cgroup the kernel enforces the limit and counts the hit; RLIMIT_DATA would
    # fire first as a MemoryError the code can catch and hide.
    if limits.memory_mb and not memory_cgroup:
        size = limits.memory_mb * 1024 * 1024
        wanted.append((resource.RLIMIT_DATA, size, size))
    if limits.nproc:
        extra = 0 if os.geteuid() == 0 else _user_process_count(os.getuid())
        wanted.append((resource.RLIMIT_NPROC, limits.nproc + extra, limits.nproc + extra))
    if limits.fsize_mb:
        size = limits.fsize_mb * 1024 * 1024
        wanted.append((resource.RLIMIT_FSIZE, size, size))
    out = []
    for res, soft, hard in wanted:
        _cur_soft, cur_hard = resource.getrlimit(res)
        if cur_hard != resource.RLIM_INFINITY and os.geteuid() != 0:
            hard = min(hard, cur_hard)  # raising a hard limit needs privilege
            soft = min(soft, hard)
        out.append((res, (soft, hard)))
    return out


def _preexec(
    rlimits: list[tuple[int, tuple[int, int]]], procs_files: Sequence[str] = ()
) -> Callable[[], None]:
    # Runs between fork and exec: keep it to bare syscalls (no allocation-heavy work, no locks).
    def apply() -> None:
        pid = str(os.getpid()).encode()
        for path in procs_files:  # join the command's cgroup(s): everything it starts follows
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)
        for res, pair in rlimits:
            resource.setrlimit(res, pair)

    return apply


def _install_root(program: str) -> list[Path]:
    """Where an absolute program is installed (a venv's root for `<venv>/bin/tool`)."""
    path = Path(program)
    if not path.is_absolute():
        return []
    return [path.parent.parent if path.parent.name == "bin" else path.parent]


def _bind_order(paths: Sequence[Path]) -> list[str]:
    # Parents before children so a nested writable path is mounted on top, not hidden.
    unique = dict.fromkeys(os.path.realpath(p) for p in paths if Path(p).exists())
    return sorted(unique, key=lambda p: (p.count("/"), p))


@contextmanager
def read_only(paths: Iterable[Path]) -> Iterator[None]:
    """Within this block (this thread or task), commands get `paths` bound read-only.

    For a test run: the frozen test files and `.git` live inside the writable worktree, and
    the code under test must be able to neither change nor delete them (a mount point cannot
    be unlinked). Nested blocks add up.
    """
    token = _read_only.set((*_read_only.get(), *(str(p) for p in paths)))
    try:
        yield
    finally:
        _read_only.reset(token)


def _bwrap_argv(
    caps: SandboxCapabilities,
    cwd: str,
    binds: list[str],
    private: str,
    readable: list[str],
    protected: list[str],
    hidden: Sequence[str] = (),
) -> list[str]:
    cmd = [caps.bwrap or "bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    cmd += ["--bind", private, "/tmp"]
    # The private /tmp hides whatever lives under the real one (a checkout, a venv, a cache):
    # paths the command must read come back read-only, before the writable binds on top.
    for path in readable:
        cmd += ["--ro-bind", path, path]
    for path in binds:
        cmd += ["--bind", path, path]
    for path in protected:
        cmd += ["--ro-bind", path, path]
    for path in hidden:  # last: no bind above may bring them back
        cmd += ["--tmpfs", path]
    # A pid namespace: when the command exits, everything it started dies with it.
    cmd += ["--unshare-pid", "--die-with-parent", "--chdir", cwd]
    if os.geteuid() == 0:
        cmd += ["--cap-drop", "ALL"]  # as root bwrap keeps capabilities, incl. remounting rw
    return cmd


def _unshare_argv(
    caps: SandboxCapabilities,
    network: bool,
    cwd: str,
    binds: list[str],
    protected: list[str],
    hidden: Sequence[str] = (),
) -> list[str]:
    cmd = [caps.unshare or "unshare", "--mount", "--propagation", "private"]
    if caps.user_namespace:
        cmd += ["--user", "--map-root-user"]
    if caps.pid_namespace:
        cmd += ["--pid", "--fork", "--mount-proc", "--kill-child"]
    if not network and caps.network_isolation:
        cmd.append("--net")
    return cmd + _shim(cwd, binds, protected, confine=caps.fs_isolation, hidden=hidden)


def _shim(
    cwd: str, binds: list[str], protected: list[str], *, confine: bool, hidden: Sequence[str] = ()
) -> list[str]:
    """_confine.py: confines the mounts (if asked) and stands as the command's parent."""
    spec = json.dumps(
        {
            "writable": binds,
            "cwd": cwd,
            "confine": confine,
            "protected": protected,
            "hidden": list(hidden),
        }
    )
    # -I -S: standard library only, no site-packages scan (it starts on every command).
    return [sys.executable, "-I", "-S", str(CONFINE_SCRIPT), spec, "--"]


def _wait_unreaped(
    proc: subprocess.Popen[bytes], timeout_s: float, stop: Callable[[], bool] | None = None
) -> bool:
    """Wait for exit *without reaping*, so the pid (= process group id) can't be reused yet.

    False on timeout, or as soon as `stop()` says so (a cgroup limit was reached)."""
    deadline = time.monotonic() + timeout_s
    delay = 0.001
    while True:
        try:
            if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                return True
        except ChildProcessError:
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0 or (stop is not None and stop()):
            return False
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.05)


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _resolve(program: str, cwd: Path, path_var: str | None) -> str | None:
    if "/" in program:
        candidate = cwd / program
        return str(candidate) if os.access(candidate, os.X_OK) else None
    return shutil.which(program, path=path_var)


_notice_lock = threading.Lock()
_notice_shown = False


def _notice_once(caps: SandboxCapabilities, emit: EventSink) -> None:
    global _notice_shown
    notices = [n for n in (caps.notice, limits_notice(cgroups.support())) if n]
    with _notice_lock:
        if _notice_shown or not notices:
            return
        _notice_shown = True
    for notice in notices:
        emit(Notice(level="warning", message=notice))


def limits_notice(found: cgroups.CgroupSupport) -> str | None:
    """Which limits hold where council cannot use the pids or memory cgroup controller."""
    if found.complete:
        return None
    holds = ["the time limit", "CPU seconds and file size per process"]
    if found.pids is not None:
        holds.append("a process limit per command (pids cgroup)")
    elif os.geteuid() == 0:
        holds.append(
            "no process limit (root ignores RLIMIT_NPROC; the pid namespace still ends "
            "every process with the command)"
        )
    else:
        holds.append("a process limit through RLIMIT_NPROC, counted over all your processes")
    if found.memory is not None:
        holds.append("a memory limit per command (memory cgroup)")
    else:
        holds.append(
            "memory per process through RLIMIT_DATA (code that catches MemoryError hides a hit)"
        )
    return f"Sandbox: {found.why}. Limits that hold: {'; '.join(holds)}."


def _decode_exit(rc: int) -> tuple[int | None, int | None]:
    if rc < 0:
        return None, -rc
    # bubblewrap and the shim report a child killed by signal N as exit 128+N, like a shell.
    if 128 < rc < 128 + signal.NSIG:
        return None, rc - 128
    return rc, None


def run(
    argv: Sequence[str],
    cwd: Path,
    *,
    timeout_s: float,
    limits: Limits | None = None,
    network: bool = False,
    writable: Sequence[Path] = (),
    readable: Sequence[Path] = (),
    env: Mapping[str, str] | None = None,
    emit: EventSink = null_sink,
    output_cap_bytes: int = DEFAULT_CAP_BYTES,
    sandbox: SandboxCapabilities | None = None,
) -> CommandResult:
    """Run `argv` in `cwd` (the worktree) confined as well as this machine allows.

    Only `cwd`, `writable` and a private tmp (also HOME) are writable; `readable` paths stay
    visible (read-only) even where they live under the real /tmp. The program's own
    installation is always readable. Without `network` the
    command gets an empty network namespace. A timeout kills the whole process group, and any
    process the command left behind is killed when it exits.
    """
    if not argv:
        raise ValueError("run() needs a command")
    argv = [str(a) for a in argv]
    cwd = Path(cwd).resolve()
    if not cwd.is_dir():
        raise ValueError(f"working directory {cwd} does not exist")
    caps = sandbox or capabilities()
    limits = limits or Limits()
    _notice_once(caps, emit)

    private = tempfile.mkdtemp(prefix="council-sbx-")
    os.makedirs(os.path.join(private, ".home"))
    inside_tmp = "/tmp" if caps.backend == "bwrap" else private
    child_env = scrubbed_env()
    child_env.update(
        HOME=f"{inside_tmp}/.home", TMPDIR=inside_tmp, TMP=inside_tmp, TEMP=inside_tmp, PWD=str(cwd)
    )
    child_env.update(env or {})

    binds = _bind_order([cwd, *writable])
    protected = _bind_order([Path(p) for p in _read_only.get()])
    # The warm gateway process's socket and token (gateway/daemon): a door to the user's model
    # keys and to the network, never shown to the code under test.
    hidden = _bind_order([gateway_dir()])
    net_isolated = fs_isolated = False
    prefix: list[str] = []
    if caps.backend == "bwrap":
        prefix = _bwrap_argv(
            caps,
            str(cwd),
            binds,
            private,
            _bind_order(
                [*readable, *_install_root(_resolve(argv[0], cwd, child_env.get("PATH")) or "")]
            ),
            protected,
            hidden,
        )
        if not network:
            prefix.append("--unshare-net")
        prefix.append("--")
        net_isolated, fs_isolated = not network, True
    elif caps.backend == "unshare":
        prefix = _unshare_argv(caps, network, str(cwd), [*binds, private], protected, hidden)
        net_isolated = not network and caps.network_isolation
        fs_isolated = caps.fs_isolation
    else:
        # No namespaces: still never council as the direct parent of generated code.
        prefix = _shim(str(cwd), [], [], confine=False)

    notes: list[str] = []
    if not network and not net_isolated:
        notes.append("network not isolated")
    if not fs_isolated:
        notes.append("filesystem not isolated")
        if protected:
            notes.append("tests and .git not write-protected")

    start = time.monotonic()
    program = _resolve(argv[0], cwd, child_env.get("PATH"))
    if program is None:
        shutil.rmtree(private, ignore_errors=True)
        result = CommandResult(
            argv,
            str(cwd),
            127,
            0.0,
            "",
            f"command not found: {argv[0]}\n",
            network_isolated=net_isolated,
            fs_isolated=fs_isolated,
            backend=caps.backend,
            notes=notes,
        )
        _emit_run(result, emit, child_env)
        return result

    timed_out = False
    proc: subprocess.Popen | None = None
    limit_hit = ""
    group = cgroups.create(limits.nproc, limits.memory_mb)
    try:
        proc = subprocess.Popen(
            [*prefix, program, *argv[1:]],
            cwd=cwd,
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # own process group: a timeout kills the whole tree
            preexec_fn=_preexec(
                _rlimits(limits, memory_cgroup=group is not None and "memory" in group.dirs),
                group.procs_files if group else (),
            ),
        )
        out = TailBuffer(proc.stdout, output_cap_bytes)  # type: ignore[arg-type]
        err = TailBuffer(proc.stderr, output_cap_bytes)  # type: ignore[arg-type]
        watch = (lambda: bool(group.limit_reached())) if group else None
        if not _wait_unreaped(proc, timeout_s, watch):
            limit_hit = group.limit_reached() if group else ""
            if limit_hit:
                group.kill()  # type: ignore[union-attr]
                _wait_unreaped(proc, TERM_GRACE_S)
            else:
                timed_out = True
                _killpg(proc.pid, signal.SIGTERM)
                if not _wait_unreaped(proc, TERM_GRACE_S):
                    _killpg(proc.pid, signal.SIGKILL)
                    _wait_unreaped(proc, TERM_GRACE_S)
        # Whatever the command left running in its group goes too (pid not reaped yet: safe),
        # and in its cgroup (what escaped the group with setsid).
        _killpg(proc.pid, signal.SIGKILL)
        if group is not None:
            limit_hit = limit_hit or group.limit_reached()
            group.close()
            group = None
        rc = proc.wait()
        duration = time.monotonic() - start
        drained = out.finish(PIPE_DRAIN_S) & err.finish(PIPE_DRAIN_S)
        if not drained:
            notes.append("output pipe held open by an escaped process")
        exit_code, sig = _decode_exit(rc)
        stderr = err.text()
        if limit_hit:
            # In the output too: toolchains show the output's tail to the model and the user.
            notes.append(limit_hit)
            stderr += f"\ncouncil sandbox: {limit_hit}; the command was killed\n"
            exit_code = None if exit_code == 0 else exit_code  # never a success
            sig = sig or signal.SIGKILL
        result = CommandResult(
            argv,
            str(cwd),
            None if timed_out else exit_code,
            duration,
            out.text(),
            stderr,
            timed_out=timed_out,
            signal=sig,
            network_isolated=net_isolated,
            fs_isolated=fs_isolated,
            backend=caps.backend,
            notes=notes,
        )
    except BaseException:
        # council itself was interrupted (SIGTERM, ^C): the command's group must not outlive it.
        if proc is not None:
            _killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        raise
    finally:
        if group is not None:
            group.close()
        shutil.rmtree(private, ignore_errors=True)
    _emit_run(result, emit, child_env)
    return result


def _emit_run(result: CommandResult, emit: EventSink, child_env: Mapping[str, str]) -> None:
    secrets = {**os.environ, **child_env}
    emit(
        CommandRun(
            argv=[redact(a, secrets) for a in result.argv],
            cwd=result.cwd,
            exit_code=result.exit_code,
            duration_s=round(result.duration_s, 3),
            timed_out=result.timed_out,
            output_tail=redact(result.tail(), secrets),
        )
    )
