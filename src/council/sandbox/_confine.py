"""Confine a command inside a fresh mount namespace, and stand between council and the command.

Run by the unshare backend as `unshare --mount --pid --fork ... python -I _confine.py SPEC --
ARGV` (and, with no namespaces at all, by the `none` backend as plain `python -I _confine.py`).
With `"confine": true` in SPEC every mount is made read-only but the given writable paths, and
the given protected paths (frozen tests, `.git`) are bound read-only on top of those.

It then forks the command and waits as its parent: inside a pid namespace it is pid 1 (the
command cannot signal it, and never sees council's pid), outside one it is still the parent
a test's `os.kill(os.getppid(), ...)` reaches, never council. Standard library only (it runs
with `python -I`, outside the venv's site-packages).
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21
# Flags a remount must repeat: in a user namespace the kernel refuses to clear locked ones.
KEEP = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME

PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38


@functools.cache
def _libc() -> ctypes.CDLL:  # noqa: F821  (imported inside: lazily)
    # Loaded only to confine: the shim alone (no namespaces) should start as fast as it can.
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong]
    libc.mount.argtypes += [ctypes.c_void_p]
    return libc


def _enc(text: str | None) -> bytes | None:
    return None if text is None else os.fsencode(text)


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    import ctypes

    data_p = ctypes.c_char_p(data.encode()) if data else None
    if _libc().mount(_enc(source), _enc(target), _enc(fstype), flags, data_p) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target}: {os.strerror(err)}")


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal (\040).
    out, i = [], 0
    while i < len(field):
        code = field[i + 1 : i + 4]
        if field[i] == "\\" and len(code) == 3 and code.isdigit():
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _mount_points() -> list[str]:
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        points = [_unescape(line.split()[4]) for line in fh if line.strip()]
    return list(dict.fromkeys(points))


def _under(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _remount_read_only(point: str) -> None:
    flags = os.statvfs(point).f_flag & KEEP
    _mount(None, point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | flags)


def confine(
    writable: list[str],
    protected: tuple[str, ...] | list[str] = (),
    hidden: tuple[str, ...] | list[str] = (),
) -> None:
    """Make every mount read-only except bind mounts of `writable`; `protected` stays read-only.

    `protected` paths live inside a writable one (a frozen test in the worktree): each is bound
    onto itself and made read-only after the writable binds, so it can be neither written nor
    deleted (a mount point cannot be unlinked).
    """
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    points = _mount_points()
    for path in writable:
        _mount(path, path, None, MS_BIND | MS_REC)
    for point in points:
        if _under(point, writable):
            continue
        try:
            _remount_read_only(point)
        except OSError:
            # A pseudo filesystem we cannot remount is harmless once capabilities are gone;
            # a real filesystem left writable is not: refuse to run.
            if not _under(point, ["/proc", "/sys", "/dev"]):
                raise
    # Tools (multiprocessing semaphores) need a writable /dev/shm; give a private one.
    if os.path.isdir("/dev/shm"):
        _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=1777")
    for path in protected:
        _mount(path, path, None, MS_BIND)
        _remount_read_only(path)
    for path in hidden:  # an empty read-only tmpfs over it: what was there is out of reach
        _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, "size=4k")


def drop_privileges() -> None:
    """No capabilities after exec (no remounting back to rw), no setuid gains."""
    import ctypes

    if _libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(NO_NEW_PRIVS)")
    with open("/proc/sys/kernel/cap_last_cap", encoding="ascii") as fh:
        last = int(fh.read())
    for cap in range(last + 1):
        _libc().prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)


_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)


def _exit_status(status: int) -> int:
    # Like bubblewrap and a shell: a command killed by signal N comes back as exit 128+N.
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


def supervise(argv: list[str]) -> int:
    """Fork the command, forward termination signals to it, reap everything, return its status.

    As pid 1 of a pid namespace the kernel drops any signal the command sends us (unless we
    handle it: so only council's signals, from outside, are forwarded), and orphans reparent to
    us, so we reap them until the command itself ends; then the namespace dies with us.
    """
    child = os.fork()
    if child == 0:
        for sig in _FORWARDED:
            signal.signal(sig, signal.SIG_DFL)
        try:
            os.execvp(argv[0], argv)
        except OSError as exc:
            print(f"council sandbox: cannot run {argv[0]}: {exc}", file=sys.stderr)
        os._exit(127)

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for sig in _FORWARDED:
        signal.signal(sig, forward)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return 127
        except InterruptedError:
            continue
        if pid == child:
            return _exit_status(status)


def main(args: list[str]) -> int:
    if args == ["--probe"]:
        _mount(None, "/", None, MS_REC | MS_PRIVATE)
        _remount_read_only("/")
        return 0
    spec = json.loads(args[0])
    argv = args[2:] if len(args) > 1 and args[1] == "--" else args[1:]
    try:
        if spec.get("confine", True):
            confine(
                [os.path.realpath(p) for p in spec["writable"]],
                [os.path.realpath(p) for p in spec.get("protected", [])],
                [os.path.realpath(p) for p in spec.get("hidden", [])],
            )
            drop_privileges()
        # Our cwd still points at the pre-bind (now read-only) mount: re-enter through the bind.
        os.chdir(spec["cwd"])
    except OSError as exc:
        print(f"council sandbox: cannot confine the command: {exc}", file=sys.stderr)
        return 126
    return supervise(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
