"""A service that outlives the command which started it: a small detached keeper process runs
it (a Supervised tree with its bounded log) and stops the whole tree on SIGTERM; `Kept` is the
handle a later `council deploy status | logs | rollback` rebuilds from the target's state.

The keeper runs as `python -I -m council.targets.keeper`: isolated mode, so the release's
PYTHONPATH (the service's code, which is untrusted) cannot shadow council's own modules. It
writes a status file: the service's pid and token once started, its exit code when it ends.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil

from council.targets.supervise import (
    STOP_GRACE_S,
    BoundedLog,
    Supervised,
    carrying,
    send_signal,
    tree_of,
)

START_TIMEOUT_S = 20.0  # the keeper's own start (a Python import), not the service's
PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h


def _write_status(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    tmp.replace(path)  # readers never see half a file


def read_status(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class Kept:
    """The handle of a kept service: the same surface as Supervised (pid, exit_code, alive,
    stop), whether this process started it or found it in the target's state."""

    def __init__(self, keeper_pid: int, keeper_created: float, status: Path) -> None:
        self.keeper_pid = keeper_pid
        self.keeper_created = keeper_created
        self.status = status
        self._popen: subprocess.Popen[bytes] | None = None
        data = read_status(status)
        self.pid = int(data.get("pid", 0))
        self.token = str(data.get("token", ""))

    @classmethod
    def start(cls, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], log: Path) -> Kept:
        status = log.with_suffix(".status.json")
        status.unlink(missing_ok=True)
        log.parent.mkdir(parents=True, exist_ok=True)
        keeper = [sys.executable, "-I", "-m", "council.targets.keeper"]
        popen = subprocess.Popen(
            [*keeper, "--log", str(log), "--status", str(status), "--cwd", str(cwd), "--", *argv],
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # outlives this command and its terminal
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while "pid" not in read_status(status):
            if popen.poll() is not None or time.monotonic() > deadline:
                popen.kill()
                popen.wait()
                raise OSError(f"the service keeper did not start (exit code {popen.poll()})")
            time.sleep(0.02)
        kept = cls(popen.pid, psutil.Process(popen.pid).create_time(), status)
        kept._popen = popen  # reaped here while this process lives
        return kept

    def _keeper(self) -> psutil.Process | None:
        if self._popen is not None and self._popen.poll() is not None:
            return None
        try:
            proc = psutil.Process(self.keeper_pid)
            if abs(proc.create_time() - self.keeper_created) > 1 or proc.status() == "zombie":
                return None  # the pid was reused by someone else
            return proc
        except psutil.Error:
            return None

    def exit_code(self) -> int | None:
        data = read_status(self.status)
        if "exit_code" in data:
            return int(data["exit_code"])
        return None if self._keeper() is not None else -9  # the keeper was killed

    def alive(self) -> bool:
        return self.exit_code() is None

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        keeper = self._keeper()
        if keeper is not None:
            send_signal(keeper, signal.SIGTERM)  # the keeper stops its tree, then exits
            try:
                keeper.wait(timeout=grace_s * 3)
            except psutil.Error:
                send_signal(keeper, signal.SIGKILL)
                psutil.wait_procs([keeper], timeout=grace_s)  # gone when stop returns
        if self._popen is not None:
            self._popen.wait(timeout=grace_s)
        # Whatever is left (a killed keeper's service, escaped descendants): by pid and token.
        left = [
            *(tree_of(self.pid) if self.pid else []),
            *(carrying(self.token) if self.token else []),
        ]
        for proc in left:
            send_signal(proc, signal.SIGKILL)
        psutil.wait_procs(left, timeout=grace_s)


def _adopt_orphans() -> bool:
    """Make the keeper the reaper of its orphaned descendants (Linux's child subreaper): a
    daemon that double-forks, calls setsid and drops its environment (and with it the token)
    is re-parented to the keeper instead of to init, so the keeper still finds and stops it."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _reap_adopted(service_pid: int) -> None:
    """Collect adopted descendants that ended (never the service: its Popen keeps its code)."""
    for child in psutil.Process().children():
        if child.pid == service_pid:
            continue
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(child.pid, os.WNOHANG)
        except (psutil.Error, ChildProcessError):
            continue


def _stop_adopted(service_pid: int, grace_s: float) -> None:
    """Stop the adopted escapees (the keeper's descendants outside the service's own tree, which
    Supervised.stop handles) and whatever they started: SIGTERM, then SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL, signal.SIGKILL):
        inside = {proc.pid for proc in tree_of(service_pid)}
        left = [p for p in psutil.Process().children(recursive=True) if p.pid not in inside]
        if not left:
            return
        for proc in left:
            send_signal(proc, sig)
        psutil.wait_procs(left, timeout=grace_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="council-keeper")
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--status", type=Path, required=True)
    parser.add_argument("--cwd", type=Path, required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stopping.set())
    adopting = _adopt_orphans()
    service = Supervised(command, cwd=args.cwd, env=dict(os.environ), log=BoundedLog(args.log))
    _write_status(args.status, {"pid": service.pid, "token": service.token})
    while not stopping.is_set() and service.alive():
        stopping.wait(0.2)
        if adopting:
            _reap_adopted(service.pid)
    stopped = stopping.is_set()
    grace = STOP_GRACE_S if stopped else 1.0  # it exited: reap it, drain its log, sweep
    if adopting:  # first: an escapee holding the service's output would keep its log open
        _stop_adopted(service.pid, grace)
    service.stop(grace_s=grace)
    if adopting:
        _stop_adopted(service.pid, 1.0)  # what escaped while it was being stopped
    code = service.exit_code()
    _write_status(
        args.status,
        {"pid": service.pid, "token": service.token, "exit_code": code, "stopped": stopped},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
