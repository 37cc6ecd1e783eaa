"""Bounded capture of a child's output: keep the last N bytes so endless output can't eat memory."""

from __future__ import annotations

import threading
from typing import IO

DEFAULT_CAP_BYTES = 2 * 1024 * 1024


class TailBuffer:
    """Drains a pipe on a thread, keeping only the last `cap` bytes and counting the rest."""

    def __init__(self, stream: IO[bytes], cap: int = DEFAULT_CAP_BYTES) -> None:
        self._stream = stream
        self._cap = cap
        self._data = bytearray()
        self.dropped = 0
        # Daemon: a grandchild that escaped the process group may hold the pipe open forever;
        # it must not keep the interpreter alive.
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        try:
            while chunk := self._stream.read1(65536):  # type: ignore[attr-defined]
                self._data += chunk
                excess = len(self._data) - self._cap
                if excess > 0:
                    del self._data[:excess]
                    self.dropped += excess
        except (OSError, ValueError):
            pass  # pipe closed under us after a timeout: what we have is the output

    def finish(self, wait_s: float) -> bool:
        """Wait for end-of-output up to `wait_s`; False if the pipe is still held open."""
        self._thread.join(wait_s)
        return not self._thread.is_alive()

    def text(self) -> str:
        body = bytes(self._data).decode("utf-8", errors="replace")
        if self.dropped:
            return f"[... {self.dropped} earlier bytes dropped ...]\n{body}"
        return body
