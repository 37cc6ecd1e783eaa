"""Run a command on a pseudo-terminal, as a person's shell would, and keep what it drew."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def on_terminal(
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    stop_when: Callable[[bytes], bool] | None = None,
    timeout_s: float = 300,
) -> bytes:
    """Everything the command wrote to its terminal, until it exits, or until `stop_when` is
    true of the screen so far (then it is sent SIGTERM, as a person's kill would)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    screen = b""
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not data:
                    break
                screen += data
                if stop_when is not None and stop_when(screen):
                    break
            elif proc.poll() is not None:
                break
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        os.close(master)
    return screen


def plain(screen: bytes) -> str:
    """The screen's text without cursor movements and colours."""
    return _ESCAPES.sub("", screen.decode(errors="replace"))
