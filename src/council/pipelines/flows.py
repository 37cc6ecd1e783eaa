"""The flows by kind: start any kind of run, or resume a stored one, through one function each.

The CLI (`council run`, `council resume`) and the server's workers use these; a worker starts a
run from the kind and params stored in its row and resumes a killed one after its last finished
step. Flows are named by import path, imported on first use, so the CLI's start-up stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from council.config import CouncilConfig
from council.errors import UsageError
from council.events import Emitter
from council.pipelines.lifecycle import Flow, load_run, refuse_finished
from council.store import RunRecord, Store

# kind -> "module:Class" of its Flow subclass (add a line for a new flow)
FLOWS: dict[str, str] = {
    "run": "council.pipelines.run:TddFlow",
    "heal": "council.pipelines.heal:HealFlow",
    "deploy": "council.pipelines.deploy.flow:DeployFlow",
    "doit": "council.pipelines.doit:DoitFlow",
}


def flow_class(kind: str) -> type[Flow]:
    """The Flow subclass of `kind`; UsageError for a kind no flow is registered for."""
    path = FLOWS.get(kind)
    if path is None:
        raise UsageError(f"unknown run kind {kind!r} (known: {', '.join(sorted(FLOWS))})")
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def start_flow(kind: str, **request: Any) -> Flow:
    """A new run of `kind`, checked and recorded; call `.execute()` on it. `request` is what
    `Flow.start` takes: repo, feature, config, store, emit and the flow's own params."""
    return flow_class(kind).start(**request)


def resume_run(run_id: str, *, config: CouncilConfig, store: Store, emit: Emitter) -> Flow:
    """The stored run `run_id` (or unique prefix) as its kind's flow, ready to `.execute()`
    from after its last finished step. A green run, or a kind that cannot resume, is refused."""
    run = resumable(load_run(store, run_id))
    return flow_class(run.kind).resume(run_id=run.id, config=config, store=store, emit=emit)


def resumable(run: RunRecord) -> RunRecord:
    """`run`, refused (UsageError) when it is green or of a kind no flow is registered for."""
    refuse_finished(run)
    if run.kind not in FLOWS:
        raise UsageError(f"run {run.id} is a {run.kind}, which `council resume` cannot continue")
    return run
