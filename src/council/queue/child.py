"""The process that executes one queued run: `python -m council.queue.child DB_URL RUN_ID`,
or a warm spare (`--warm DB_URL`) that imports everything first and then reads the run's id.

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
import threading

EXIT_BUSY = 3
WARM_UP_WAIT_S = 120.0  # after its run, how long a spare waits for its imports to finish
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask the kernel for SIGTERM when the worker that started us dies, however it dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: the worker's lease running out still re-queues the run


def warm_up() -> None:
    """Import what every run needs (LiteLLM is seconds of CPU) before a run is handed over."""
    from council.gateway.router import preload_litellm
    from council.pipelines import flows

    preload_litellm().join()  # the gateway waits for this same import instead of racing it
    for kind in ("run", "heal"):
        flows.flow_class(kind)


def _exit_now(code: int) -> None:
    """Leave without Python's shutdown (its finalizers could wait on the warm-up's imports)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _take_output(log_path: str) -> None:
    """From now on this process writes to the run's log."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def main(argv: list[str]) -> int:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    if len(argv) == 2 and argv[0] == "--warm":
        # A spare: warm up while it waits for "RUN_ID LOG_PATH" on stdin (EOF: not needed). A
        # run handed over before the imports are done goes on beside them, as a cold start
        # does; one handed over later finds them done.
        die_with_parent()
        warming = threading.Thread(target=warm_up, name="warm-up", daemon=True)
        warming.start()
        line = sys.stdin.readline().strip()
        if not line:
            _exit_now(0)  # not needed: nothing to finish, and the imports may be mid-way
        run_id, log_path = line.split(" ", 1)
        _take_output(log_path)
        code = run(argv[1], run_id)
        # A run can end before the warm-up does (its model calls went to the warm gateway
        # process). Exiting then kills the warm-up mid-import, holding an import lock that an
        # object's __del__ (LiteLLM's HTTP handler) waits on at exit: forever.
        warming.join(timeout=WARM_UP_WAIT_S)
        if warming.is_alive():
            _exit_now(code)
        return code
    if len(argv) != 2:
        print("usage: python -m council.queue.child DB_URL RUN_ID", file=sys.stderr)
        return 2
    die_with_parent()
    from council.gateway.router import preload_litellm

    preload_litellm()  # seconds of imports, overlapped with the worktree and environment work
    return run(*argv)


def run(db_url: str, run_id: str) -> int:
    """Execute run `run_id` of the store at `db_url`; the exit code (see the module's doc)."""
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
