"""The step engine: named steps whose results are stored, so a killed run resumes after them.

A step runs once per run. Its output (a JSON-able dict) travels in its StepFinished event, which
the store projects into the step's row; on resume, a finished step returns its stored output
instead of running again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from council.events import Emitter, StepFinished, StepStarted
from council.store import Store

StepOutput = dict[str, Any]


class StepRunner:
    def __init__(self, store: Store, run_id: str, emit: Emitter) -> None:
        """`emit` must reach `store` (its record_event subscribed): the store keeps the steps."""
        self.store = store
        self.run_id = run_id
        self.emit = emit
        self.done: dict[str, StepOutput] = store.completed_steps(run_id)
        # Steps that started but never finished (killed, or failed): they run again, after
        # their `restore` puts the worktree back as the last finished step left it.
        self.unfinished = {s.name for s in store.steps(run_id) if s.status != "ok"}

    def is_done(self, name: str) -> bool:
        return name in self.done

    def run(
        self,
        name: str,
        fn: Callable[[], StepOutput],
        *,
        persona: str | None = None,
        detail: str = "",
        restore: Callable[[], None] | None = None,
    ) -> StepOutput:
        if name in self.done:
            return self.done[name]
        if restore is not None and name in self.unfinished:
            restore()
        self.emit.step = name
        self.emit(StepStarted(persona=persona, detail=detail))
        try:
            output = fn()
        except BaseException as exc:
            error = {"error": str(exc)}
            self.emit(StepFinished(status="failed", detail=str(exc)[:500], output=error))
            raise
        else:
            self.done[name] = output
            detail = str(output.get("detail", ""))
            self.emit(StepFinished(status="ok", detail=detail, output=output))
            return output
        finally:
            self.emit.step = None  # events after the step belong to the run, not to it
