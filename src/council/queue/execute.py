"""Execute one queued run in this process: the single place the queue calls a flow.

A run is started and resumed the same way: its stored steps are skipped, so a run whose worker
died goes on from its last finished step. Until the shared lifecycle's flow registry is on main
this calls today's TddPipeline / HealPipeline directly.
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
        if run.kind == "heal":
            return _heal(store, run_id, repo, config, emit, options)
        from council.pipelines.tdd import TddPipeline

        pipeline = TddPipeline.resume(run_id=run_id, config=config, store=store, emit=emit)
        return pipeline.execute().status


def _heal(store: Store, run_id: str, repo: Path, config, emit: Emitter, options: dict) -> str:
    from council.pipelines.heal import HealPipeline

    class QueuedHeal(HealPipeline):
        """Today's heal creates its own run row; a queued heal adopts the submitted one."""

        def _start_run(self) -> None:
            self.run_id = run_id
            store.claim_run(run_id)
            self.emit.run_id = run_id
            self.emit.subscribe(store.record_event)

    pipeline = QueuedHeal(
        repo=repo,
        config=config,
        store=store,
        emit=emit,
        max_iterations=int(options.get("max_iterations") or 10),
        only_gates=options.get("gates") or None,
    )
    return pipeline.execute().status
