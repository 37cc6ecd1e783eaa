"""One run per repository at a time: `<repo>/.council/run.lock`, held with flock, naming its pid.

The kernel's flock is the truth (it is released when the holder dies, however it dies), so a
lock file left by a killed run is simply taken over; the pid, host and command written inside
only say who holds it when a second run is refused.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

from council.errors import CouncilError
from council.processes import pid_alive

LOCK_RELATIVE_PATH = Path(".council") / "run.lock"


class RepositoryBusy(CouncilError):
    """Another council run holds this repository's run lock (exit 2: try again later)."""

    exit_code = 2


class RunLock:
    """An acquired run lock; `release()` (or leaving the `with` block, or dying) frees it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd
        self.took_over: dict | None = None  # what a stale lock file said, when one was taken over

    @classmethod
    def acquire(cls, repo: Path, what: str) -> RunLock:
        """Take the lock of `repo` for `what` ("council run ..."), or raise RepositoryBusy."""
        path = Path(repo) / LOCK_RELATIVE_PATH
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RepositoryBusy(
                f"another council run is working on this repository: {describe(holder(path))}",
                hint=f"wait for it to finish, or stop it; the lock is {path}",
            ) from None
        stale = holder(path)
        owner = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": what,
            "since": time.time(),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(owner) + "\n").encode(), 0)
        lock = cls(path, fd)
        lock.took_over = stale if stale and stale.get("pid") != os.getpid() else None
        return lock

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)  # a released lock names nobody
        finally:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


def holder(path: Path) -> dict | None:
    """Who the lock file says holds it (may be stale), or None."""
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "null")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def describe(owner: dict | None) -> str:
    if not owner:
        return "its holder did not say who it is"
    since = owner.get("since")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if since else "?"
    pid = owner.get("pid")
    alive = "" if not isinstance(pid, int) or pid_alive(pid) else " (not running any more)"
    return (
        f"pid {pid}{alive} on {owner.get('host', '?')}, `{owner.get('command', '?')}`, since {when}"
    )
