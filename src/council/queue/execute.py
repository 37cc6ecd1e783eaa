"""Execute one queued run in this process: the single place the queue calls a flow.

A run is started and resumed the same way, through the lifecycle's flow registry: its stored
steps are skipped, so a run whose worker died goes on from its last finished step.
"""

from __future__ import annotations

from pathlib import Path

from council.errors import UsageError
from council.events import Emitter
from council.queue.jobs import JobQueue
from council.queue.submit import update_clone
from council.store import Store


def execute(store: Store, run_id: str, emit: Emitter | None = None) -> str:
    """Start or resume run `run_id` under its repository's run lock; its final status."""
    from council.config import resolve_config
    from council.pipelines.flows import resume_run
    from council.pipelines.models import ensure_local_models
    from council.workspace.run_lock import RunLock

    run = store.get_run(run_id)
    if run is None:
        raise UsageError(f"no run {run_id!r} in the server's store")
    job = JobQueue(store).get(run_id)
    options = job.options if job else {}
    repo = Path(run.repo)
    emit = emit or Emitter()
    with RunLock.acquire(repo, f"council worker: run {run_id}"):
        if options.get("url"):
            update_clone(repo)
        config, _ = resolve_config(repo, None)
        if options.get("budget"):
            config.limits.budget_usd = float(options["budget"])
        if options.get("max_iterations") and run.kind == "run":
            config.limits.max_iterations = int(options["max_iterations"])
        ensure_local_models(config, emit)
        flow = resume_run(run_id, config=config, store=store, emit=emit)
        return flow.execute().status
