"""`council heal --dry-run`: classify the first failure and say what would be done.

It works on a scratch copy of the repository (no branch, no store run, nothing changed) and
reports with the same events as a heal; its view is rendered from the in-memory list of them.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from council.config import CouncilConfig
from council.events import BaseEvent, Emitter, HealStarted, IterationFinished, MemoryHit
from council.heal_report import HealView, heal_view
from council.personas import Prompts
from council.pipelines.tracks import discover_tracks
from council.recovery import FixMemory, ProcessRegistry, Recovery, classify, gate_run, recover
from council.store import Store

from . import recoveries
from .gates import GateRunner, first_state, plan_gates
from .state import HealContext


def dry_run(
    *,
    repo: Path,
    config: CouncilConfig,
    store: Store | None,
    emit: Emitter,
    only_gates: list[str] | None = None,
) -> HealView:
    """The plan for the first failing gate (status "dry-run"), or "green" when none fails."""
    events: list[BaseEvent] = []
    emit.subscribe(events.append)
    tracks = discover_tracks(repo, config)
    groups = plan_gates(tracks, list(config.gates), only_gates)
    ctx = HealContext(
        repo=repo,
        config=config,
        emit=emit,
        tracks=tracks,
        memory=FixMemory(store) if store is not None else None,
        registry=ProcessRegistry.for_repo(repo),
        prompts=Prompts(repo),
        state=first_state(config, groups),
        scratch=True,
    )
    gates = GateRunner(ctx, groups)
    with tempfile.TemporaryDirectory(prefix="council-heal-dry-") as scratch:
        ctx.workdir = Path(scratch) / "repo"
        shutil.copytree(
            repo,
            ctx.workdir,
            ignore=shutil.ignore_patterns(".git", ".council", ".venv", "__pycache__"),
        )
        emit(HealStarted(gates=[s.describe() for s in gates.slots], dry_run=True))
        status, reason = _plan(ctx, gates)
    return heal_view(events, status=status, reason=reason)


def _plan(ctx: HealContext, gates: GateRunner) -> tuple[str, str]:
    ctx.iteration = 1
    _passed, failures = gates.run_all()
    if not failures:
        ctx.emit(IterationFinished(iteration=1, gates=gates.results, result="green"))
        return "green", "all gates pass (dry run: nothing changed)"
    first = failures[0]
    label, root = first.slot.label, ctx.root(first.slot.track)
    remembered = ctx.memory.lookup(first.sig) if ctx.memory else None
    matches = classify(first.subject, root=root)
    recoveries.classified(ctx, first, matches, "memory" if remembered else "")
    if remembered is not None:
        ctx.emit(MemoryHit(iteration=1, gate=label, signature=first.sig.hash, fix=remembered.kind))
    elif matches and matches[0].row.safe_without_model:
        result = recover(
            matches[0],
            root,
            dry_run=True,
            gate=label,
            timeout_s=ctx.state.timeouts[label],
            memory_mb=ctx.state.memory_mb[label],
            registry=ctx.registry,
            output=gate_run(first.subject).output,
        )
        recoveries.tried(ctx, label, result.to_dict(), "planned", applied=False)
    else:
        record = {"kind": Recovery.MODEL_PATCH.value, "dry_run": True}
        recoveries.tried(ctx, label, record, "planned", applied=False)
    ctx.emit(
        IterationFinished(
            iteration=1,
            gate=label,
            gates=gates.results,
            failures=[f.to_dict() for f in failures],
            result="planned",
        )
    )
    return "dry-run", f"{label} fails: {first.sig.render()}"
