"""Start, find, wait for and stop gateway processes; whether to use one at all."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from council.gateway.daemon.wire import Endpoint, daemon_env, read_info

DEFAULT_IDLE_S = 900.0  # 15 minutes without a request, then the process exits
_OFF = ("off", "0", "false", "no")
_ON = ("on", "1", "true", "yes")
_spawned: dict[str, subprocess.Popen[bytes]] = {}  # started by this process, by socket path


def enabled(configured: bool = True) -> bool:
    """COUNCIL_GATEWAY=off|on decides; else council.yaml's `gateway.warm_process`; else on,
    except under CI (CI=true: one run per fresh machine, nothing to keep warm for, and a
    process that outlives the job is unwelcome there)."""
    value = os.environ.get("COUNCIL_GATEWAY", "").strip().lower()
    if value in _OFF:
        return False
    if value in _ON:
        return True
    if not configured:
        return False
    return os.environ.get("CI", "").strip().lower() not in ("true", "1")


def idle_timeout_s(configured: float | None = None) -> float:
    value = os.environ.get("COUNCIL_GATEWAY_IDLE_S", "").strip()
    try:
        if value and float(value) > 0:
            return float(value)
    except ValueError:
        pass
    return float(configured) if configured else DEFAULT_IDLE_S


def running(ep: Endpoint) -> bool:
    """A process of this key lives (it holds its lock file, from start to exit)."""
    try:
        fd = os.open(ep.lock, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # also drops our lock if we got it
    return False


def start(ep: Endpoint, idle_s: float) -> None:
    """Start the process of `ep` in the background unless it runs (or this process started
    it already). Never waits."""
    proc = _spawned.get(str(ep.socket))
    if (proc is not None and proc.poll() is None) or running(ep):
        return
    clean(ep)  # a killed process's socket and info file: nobody may take them for live ones
    ep.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(ep.folder, 0o700)
    log = os.open(ep.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        _spawned[str(ep.socket)] = subprocess.Popen(
            [sys.executable, "-m", "council.gateway.daemon.server", str(ep.folder), ep.key,
             str(idle_s)],
            env=daemon_env(),
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # not in the terminal's process group: ^C is the client's
            close_fds=True,
        )  # fmt: skip
    finally:
        os.close(log)


def wait_ready(ep: Endpoint, timeout_s: float) -> dict[str, Any] | None:
    """The info of the process of `ep` once it answers; None if none is starting, it died,
    or it is not ready within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        proc = _spawned.get(str(ep.socket))
        alive = running(ep)
        info = read_info(ep) if alive else None  # without a living holder: a dead one's file
        if info is not None:
            return info
        if not (alive or (proc is not None and proc.poll() is None)):
            return None
        if time.monotonic() > deadline:
            return None
        time.sleep(0.02)


def endpoints(folder: Path) -> list[Endpoint]:
    """Every gateway process that left files in `folder` (living or not)."""
    if not folder.is_dir():
        return []
    return [Endpoint(folder, p.stem) for p in sorted(folder.glob("*.lock"))]


def stop(ep: Endpoint, timeout_s: float = 5.0) -> bool:
    """Stop the process of `ep` (SIGTERM; it removes its files); True if one was running."""
    pid = _pid(ep)
    was_running = running(ep)
    if isinstance(pid, int) and was_running:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout_s
        while running(ep) and time.monotonic() < deadline:
            time.sleep(0.05)
        if running(ep):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    clean(ep)
    return was_running


def _pid(ep: Endpoint) -> int | None:
    try:
        return int(ep.lock.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None


def clean(ep: Endpoint) -> None:
    """Remove what a dead process left (only when none of this key runs)."""
    if running(ep):
        return
    for path in (ep.info, ep.socket, ep.lock, ep.log, ep.info.with_suffix(".tmp")):
        try:
            path.unlink()
        except FileNotFoundError:
            pass
