"""A service as a supervised process: its own session (so its whole tree can be signalled),
its output copied to a bounded log file, and a stop that leaves nothing behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil

LOG_MAX_BYTES = 1_000_000  # a crash-looping service must not fill the disk
STOP_GRACE_S = 5.0
TOKEN_VAR = "COUNCIL_SERVICE_TOKEN"


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on now (the OS picks it; the service binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class BoundedLog:
    """Appends to a file and keeps only its last `max_bytes` (about) once it grows past them."""

    def __init__(self, path: Path, max_bytes: int = LOG_MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")

    def write(self, data: bytes) -> None:
        with self.path.open("ab") as out:
            out.write(data)
            size = out.tell()
        if size > self.max_bytes:
            keep = self.path.read_bytes()[-(self.max_bytes // 2) :]
            cut = keep.find(b"\n")  # start on a whole line
            self.path.write_bytes(b"[... earlier output dropped ...]\n" + keep[cut + 1 :])


def tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class Supervised:
    """One started process tree with its output pumped into a BoundedLog."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        log: BoundedLog,
    ) -> None:
        self.log = log
        # A token in the environment finds descendants that left the tree and the process group
        # (double fork + setsid: a daemon reparented to init); they keep their environment.
        self.token = uuid.uuid4().hex
        self.proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env={**env, TOKEN_VAR: self.token},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() signals all of it
        )
        self.pid = self.proc.pid
        self._pump = threading.Thread(target=self._copy, name=f"log-{self.pid}", daemon=True)
        self._pump.start()

    def _copy(self) -> None:
        assert self.proc.stdout is not None
        for chunk in iter(lambda: self.proc.stdout.read1(65536), b""):  # type: ignore[union-attr]
            self.log.write(chunk)

    def exit_code(self) -> int | None:
        return self.proc.poll()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM the tree (children found by psutil, the process group, and escaped
        processes carrying the token), SIGKILL what is left after `grace_s`, sweep again for
        late spawns, then reap."""
        procs = list({p.pid: p for p in [*tree_of(self.pid), *carrying(self.token)]}.values())
        for proc in procs:
            send_signal(proc, signal.SIGTERM)
        _killpg(self.pid, signal.SIGTERM)
        _, left = psutil.wait_procs(procs, timeout=grace_s)
        for proc in left:
            send_signal(proc, signal.SIGKILL)
        _killpg(self.pid, signal.SIGKILL)
        psutil.wait_procs(left, timeout=grace_s)
        for _ in range(3):  # what was spawned while we were stopping it
            stragglers = carrying(self.token)
            if not stragglers:
                break
            for proc in stragglers:
                send_signal(proc, signal.SIGKILL)
            psutil.wait_procs(stragglers, timeout=grace_s)
        try:
            self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
        self._pump.join(timeout=grace_s)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def tree_of(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def carrying(token: str) -> list[psutil.Process]:
    """Processes whose environment holds this service's token (escaped descendants included)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(TOKEN_VAR) == token:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def send_signal(proc: psutil.Process, sig: int) -> None:
    try:
        proc.send_signal(sig)
    except psutil.Error:
        pass


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
