"""A heal's fixes without a model: remembered fixes, the catalogue's recoveries, re-runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from council.errors import CouncilError
from council.events import FailureClassified, FlakyDetected, MemoryHit, RecoveryTried
from council.pipelines.lifecycle import Stop
from council.pipelines.models import cache_root
from council.recovery import (
    Fix,
    Recovery,
    add_npm_dependency,
    add_python_dependency,
    flaky_tests,
    gate_run,
    recover,
)
from council.recovery.actions import (
    ActionResult,
    installed_version,
    pin_npm_dependency,
    pin_python_dependency,
    run_formatter,
    undo,
)
from council.recovery.memory import PATCH
from council.toolchains.report import TestReport, first_line

from .gates import Failure, GateRunner, GateSlot, failure_key, hang_location, hangs
from .patching import apply_answer
from .state import HealContext

# Failures worth one re-run of the same code before anyone edits anything: a flaky test fails
# an assertion (or fails some unknown way) and passes on the next run.
_RERUN_FIRST = {"failing_assertion"}
_DEPENDENCY = (Recovery.ADD_PYTHON_DEPENDENCY, Recovery.ADD_NPM_DEPENDENCY)
_RETRY = (Recovery.RETRY_LONGER, Recovery.RETRY_MORE_MEMORY, Recovery.FREE_PORT)


def tried(
    ctx: HealContext,
    label: str,
    record: dict[str, Any],
    result: str = "",
    *,
    applied: bool | None = None,
) -> None:
    """Report one recovery attempt (its action's own facts as `record`)."""
    ctx.emit(
        RecoveryTried(
            iteration=ctx.iteration,
            gate=label,
            recovery=str(record.get("action") or record.get("kind") or ""),
            action=str(record.get("description", "")),
            applied=bool(record.get("applied")) if applied is None else applied,
            result=result,
            record=record,
        )
    )


def classified(ctx: HealContext, failure: Failure, matches: list[Any], source: str = "") -> None:
    """Report what the failure is: the catalogue's rows that match it, and who decides the
    fix (a remembered fix, the catalogue, or a model)."""
    track = failure.slot.track
    ctx.emit(
        FailureClassified(
            iteration=ctx.iteration,
            gate=failure.slot.label,
            track=track.language if track else "",
            signature=failure.sig.to_dict(),
            catalogue=[m.id for m in matches],
            source=source or ("catalogue" if matches else "model"),
            description=matches[0].row.description if matches else "",
        )
    )


def remembered(ctx: HealContext, failure: Failure) -> str | None:
    """The fix remembered for this signature, applied and committed; None when there is none
    or it no longer applies (it then ranks lower)."""
    if ctx.memory is None:
        return None
    record = ctx.memory.lookup(failure.sig)
    if record is None:
        return None
    classified(ctx, failure, [], "memory")
    applied = _apply_remembered(ctx, record, ctx.root(failure.slot.track))
    ctx.emit(
        MemoryHit(
            iteration=ctx.iteration,
            gate=failure.slot.label,
            signature=failure.sig.hash,
            fix=record.kind,
            applied=applied,
        )
    )
    if not applied:
        ctx.memory.failed(failure.sig, record)
        return None
    fix = Fix(record.kind, dict(record.payload))
    ctx.commit(failure.slot.label, failure.sig, f"remembered {record.kind}", fix)
    return "applied remembered fix"


def _apply_remembered(ctx: HealContext, record: Any, root: Path) -> bool:
    if record.kind == PATCH:
        return apply_answer(ctx, record.payload.get("diff", ""))[0]
    if record.kind == Recovery.ADD_PYTHON_DEPENDENCY.value:
        dist = record.payload.get("distribution", "")
        pinned = str(record.payload.get("requirement", ""))
        spec = pinned[len(dist) :] if pinned.startswith(dist) and dist else ""
        result = add_python_dependency(root, dist, specifier=spec)
    elif record.kind == Recovery.ADD_NPM_DEPENDENCY.value:
        package = record.payload.get("package", "")
        pinned = str(record.payload.get("requirement", ""))
        version = pinned.rpartition("@")[2] if pinned.startswith(f"{package}@^") else "latest"
        result = add_npm_dependency(root, package, version=version)
    elif record.kind == Recovery.RUN_FORMATTER.value:
        return run_formatter(root, emit=ctx.emit).applied
    else:
        return False
    for track in ctx.tracks:
        track.env = None
    return result.applied


def deterministic(ctx: HealContext, failure: Failure, match: Any) -> str | None:
    """The catalogue's recovery without a model; None when it does not apply here."""
    slot, label, root = failure.slot, failure.slot.label, ctx.root(failure.slot.track)
    kind = match.recovery
    if kind in (Recovery.RERUN, Recovery.RETRY_BACKOFF):
        return None  # a re-run decides (see rerun)
    key = f"{kind.value}:{label}"
    attempts = ctx.state.retried.get(key, 0)
    result = recover(
        match,
        root,
        gate=label,
        timeout_s=ctx.state.timeouts[label],
        memory_mb=ctx.state.memory_mb[label],
        attempts=attempts,
        registry=ctx.registry,
        output=gate_run(failure.subject).output,
    )
    if kind in _RETRY:
        if not result.applied and kind is Recovery.RETRY_LONGER and hangs(failure.subject):
            # Timed out again with the longer limit, and the runner said where it was
            # stuck: an infinite loop is a bug like any other, Builder gets it.
            hang = hang_location(failure.subject)
            tried(ctx, label, {**result.to_dict(), "hang": hang}, "hangs: sent to Builder")
            return None
        tried(ctx, label, result.to_dict())
        if not result.applied:
            why = result.description
            raise Stop("failed", why if why.startswith(label) else f"{label}: {why}")
        ctx.state.retried[key] = attempts + 1
        if kind is Recovery.RETRY_LONGER:
            ctx.state.timeouts[label] = float(result.facts["timeout_s"])
        elif kind is Recovery.RETRY_MORE_MEMORY:
            ctx.state.memory_mb[label] = int(result.facts["memory_mb"])
        return result.description + "; re-run"
    if result.applied or result.needs_prepare:
        if slot.track is not None and kind is not Recovery.RUN_FORMATTER:
            slot.track.env = None  # the next run builds the env again
        if result.applied:
            record = result.to_dict()
            if kind in _DEPENDENCY and slot.track is not None:
                record = _install_and_pin(ctx, slot, result, root)
            tried(ctx, label, record)
            ctx.commit(label, failure.sig, kind.value, Fix.action(kind.value, **result.facts))
        else:
            tried(ctx, label, result.to_dict())
        return result.description
    tried(ctx, label, result.to_dict(), "did not apply")
    return None


def _install_and_pin(
    ctx: HealContext, slot: GateSlot, added: ActionResult, root: Path
) -> dict[str, Any]:
    """Install a dependency just declared; pin it to a compatible range of the version that
    was installed, or, when it does not install, take the declaration back and stop. Returns
    the recovery's record as reported."""
    track = slot.track
    assert track is not None
    try:
        track.prepare(ctx.workdir, cache_root() / "envs", ctx.emit)
    except CouncilError as exc:
        undo(root, added)
        track.env = None
        tried(ctx, slot.label, {**added.to_dict(), "reverted": True}, "install failed")
        why = first_line(str(exc)) or "the install failed"
        raise Stop(
            "failed",
            f"{slot.label}: {added.description}, but installing it failed ({why}); the "
            "edit was reverted",
        ) from None
    name = added.facts.get("distribution") or added.facts.get("package", "")
    version = installed_version(track.env, name)
    if version is None:
        return added.to_dict()
    if "distribution" in added.facts:
        pinned = pin_python_dependency(root, name, version)
    else:
        pinned = pin_npm_dependency(root, name, version)
    if not pinned.applied:
        return added.to_dict()
    track.env = None  # the declaration changed again: the next run prepares it
    rng = pinned.facts.get("requirement") or f"{name}@{pinned.facts['range']}"
    added.facts["requirement"] = rng
    added.description += f"; pinned to {rng} (installed {version})"
    return {**added.to_dict(), "pinned": rng, "installed": version}


def rerun(ctx: HealContext, gates: GateRunner, failure: Failure, match: Any) -> bool:
    """Re-run a failed gate once, unchanged: a failure that goes away was flaky."""
    worth = match is None or match.id in _RERUN_FIRST or match.row.retriable
    if match is not None and match.recovery is Recovery.RETRY_LONGER:
        worth = False  # it already ran twice, the second time with a longer limit
    if not worth or failure.sig.hash in ctx.state.rerun_done:
        return False
    ctx.state.rerun_done.add(failure.sig.hash)
    label = failure.slot.label
    ok, again = gates.run_gate(failure.slot)
    if not ok:
        record = {"kind": Recovery.RERUN.value}
        tried(ctx, label, record, "failed again: not flaky", applied=False)
        return False
    tests = (
        flaky_tests(failure.subject, again)
        if isinstance(failure.subject, TestReport) and isinstance(again, TestReport)
        else []
    ) or [label]
    if isinstance(failure.subject, TestReport):
        flipped = set(tests)
        ctx.state.flaky_failures |= {
            failure_key(c) for c in failure.subject.not_passing if c.id in flipped
        }
    ctx.state.note_flaky(tests)
    record = {"kind": Recovery.RERUN.value, "flaky": tests, "edited": False}
    tried(ctx, label, record, "passed on a re-run", applied=True)
    ctx.emit(FlakyDetected(iteration=ctx.iteration, gate=label, tests=tests))
    return True
