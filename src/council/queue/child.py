"""The process that executes one queued run: `python -m council.queue.child DB_URL RUN_ID`.

A run gets a process of its own so a cancel or a dying worker stops exactly it: SIGTERM is an
interrupt (the test command in flight is killed, the run records "interrupted"), and the
process dies with the worker that started it. Exit codes: 0 the run ended (its status is in
the store), 3 its repository is busy with another run, 128+N stopped by signal N.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

EXIT_BUSY = 3
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask the kernel for SIGTERM when the worker that started us dies, however it dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: the worker's lease running out still re-queues the run


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m council.queue.child DB_URL RUN_ID", file=sys.stderr)
        return 2
    die_with_parent()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    db_url, run_id = argv
    from council.gateway.router import preload_litellm

    preload_litellm()  # seconds of imports, overlapped with the worktree and environment work
    from council.errors import CouncilError
    from council.events import RunFinished
    from council.interrupts import Interrupted, interrupts_as_keyboard_interrupt
    from council.queue.execute import execute
    from council.store import Store
    from council.workspace.run_lock import RepositoryBusy

    store = Store(db_url)
    try:
        with interrupts_as_keyboard_interrupt(run_id):
            status = execute(store, run_id)
    except RepositoryBusy as exc:
        print(f"run {run_id}: {exc}", flush=True)
        return EXIT_BUSY
    except Interrupted as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except CouncilError as exc:
        # Refused before the flow started (configuration, a missing model): the run says why.
        run = store.get_run(run_id)
        if run is not None and run.status in ("running", "queued"):
            store.record_event(RunFinished(run_id=run_id, status="error", reason=exc.message))
        print(f"run {run_id}: error: {exc.message}", flush=True)
        return 0
    print(f"run {run_id}: {status}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
