"""SIGINT, SIGTERM and SIGHUP as one interrupt: the run records "interrupted" and says how to
resume, whichever way it was stopped (^C, `kill`, a closed terminal)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_last: list[Interrupted] = []  # the interrupt raised most recently in this process


class Interrupted(KeyboardInterrupt):
    """Raised in the main thread when one of SIGNALS arrives; the exit code is 128 + signal."""

    def __init__(self, signum: int, run_id: str | None = None, go_on: str | None = None) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.run_id = run_id
        self.go_on = go_on  # how to continue, when it is not `council resume RUN`

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def message(self) -> str:
        if self.go_on:
            return f"interrupted ({self.signal_name}); {self.go_on}"
        target = f" {self.run_id}" if self.run_id else ""
        return (
            f"interrupted ({self.signal_name}); `council resume{target}` continues the run "
            "from its last completed step"
        )


def last_interrupt() -> Interrupted | None:
    """The interrupt raised by a signal in this process, if any (click turns it into Abort)."""
    return _last[-1] if _last else None


@contextlib.contextmanager
def interrupts_as_keyboard_interrupt(
    run_id: str | None = None, go_on: str | None = None
) -> Iterator[None]:
    """Within the block, SIGINT/SIGTERM/SIGHUP raise Interrupted in the main thread.

    The first signal restores the previous handlers before raising, so a second one while the
    run records its end behaves as it did before (a second ^C or `kill` still stops council).
    Outside the main thread (a library caller's worker) nothing is installed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def handler(signum: int, _frame: object) -> None:
        restore()
        interrupt = Interrupted(signum, run_id, go_on)
        _last.append(interrupt)
        raise interrupt

    for sig in SIGNALS:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        restore()
