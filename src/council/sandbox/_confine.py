"""Confine a command inside a fresh mount namespace: everything read-only but the given paths.

Run by the unshare backend as `unshare --mount ... python -I _confine.py SPEC -- ARGV` when
bubblewrap is unavailable. Standard library only (it runs with `python -I`, outside the venv's
site-packages), and it execs the command so the sandboxed process keeps this pid.
"""

from __future__ import annotations

import ctypes
import json
import os
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

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong]
_libc.mount.argtypes += [ctypes.c_void_p]


def _enc(text: str | None) -> bytes | None:
    return None if text is None else os.fsencode(text)


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    data_p = ctypes.c_char_p(data.encode()) if data else None
    if _libc.mount(_enc(source), _enc(target), _enc(fstype), flags, data_p) != 0:
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


def confine(writable: list[str]) -> None:
    """Make every existing mount read-only except bind mounts of `writable` (rw)."""
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


def drop_privileges() -> None:
    """No capabilities after exec (no remounting back to rw), no setuid gains."""
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(NO_NEW_PRIVS)")
    with open("/proc/sys/kernel/cap_last_cap", encoding="ascii") as fh:
        last = int(fh.read())
    for cap in range(last + 1):
        _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)


def main(args: list[str]) -> int:
    if args == ["--probe"]:
        _mount(None, "/", None, MS_REC | MS_PRIVATE)
        _remount_read_only("/")
        return 0
    spec = json.loads(args[0])
    argv = args[2:] if len(args) > 1 and args[1] == "--" else args[1:]
    try:
        confine([os.path.realpath(p) for p in spec["writable"]])
        drop_privileges()
        # Our cwd still points at the pre-bind (now read-only) mount: re-enter through the bind.
        os.chdir(spec["cwd"])
    except OSError as exc:
        print(f"council sandbox: cannot confine the command: {exc}", file=sys.stderr)
        return 126
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        print(f"council sandbox: cannot run {argv[0]}: {exc}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
