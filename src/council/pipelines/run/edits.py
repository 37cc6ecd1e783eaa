"""Asking a persona for file edits and applying them, with bounded re-asks on refusals."""

from __future__ import annotations

from typing import Any

from council.edits import EditPolicy, apply_edits, feedback_for, parse_edits
from council.events import EditApplied, EditRefused, Notice
from council.pipelines.run.base import RunBase
from council.pipelines.tracks import Track

REASK_NOTE = (
    "(The tests and the repository map are as in your first request; they are not repeated "
    "here. The files above are as they are now.)"
)


def _empty_like(value: Any) -> Any:
    return "" if isinstance(value, str) else {}


class EditSteps(RunBase):
    def _apply_answer(
        self,
        answer: str,
        policy: EditPolicy,
        *,
        only_tests: Track | None = None,
    ) -> tuple[list[str], str]:
        """Apply one answer's edits. Returns (applied paths, feedback for the model or '')."""
        edits = parse_edits(answer)
        if not edits:
            return [], self.prompts.text("feedback_no_edits")
        notes = []
        if only_tests:
            kept = []
            for e in edits:
                if only_tests.is_test_file(e.path):
                    kept.append(e)
                else:
                    reason = "Guardian writes tests only; application code comes later"
                    self.emit(EditRefused(path=e.path, reason=reason))
                    notes.append(f"- {e.path}: refused: {reason}.")
            edits = kept
        result = apply_edits(self.ws.path, edits, policy)
        for path in result.applied:
            self.emit(EditApplied(path=path))
        for refusal in result.refused:
            self.emit(EditRefused(path=refusal.path, reason=refusal.reason))
        if result.ok and not notes:
            return result.applied, ""
        feedback = feedback_for(result)
        if result.applied:
            feedback = self.prompts.text(
                "feedback_partly_applied", applied=result.applied, feedback=feedback
            )
        return result.applied, "\n".join([*notes, feedback]).strip()

    def _edit_round(
        self,
        persona: str,
        template: str,
        policy: EditPolicy,
        *,
        only_tests: Track | None = None,
        keep: dict[str, list[str]] | list[str] | None = None,
        **facts: Any,
    ) -> list[str]:
        """Ask for edits; send non-applying blocks back with the closest real lines (bounded)."""
        applied: list[str] = []
        facts.setdefault("feedback", "")
        messages = self.prompt(persona, template, facts, keep)
        for attempt in range(1 + self.config.limits.max_edit_reasks):
            answer = self.call(persona, messages)
            done, feedback = self._apply_answer(answer, policy, only_tests=only_tests)
            applied.extend(p for p in done if p not in applied)
            if not feedback:
                break
            self.emit(Notice(level="warning", message=f"{persona}: {feedback.splitlines()[0]}"))
            if attempt == self.config.limits.max_edit_reasks:
                break
            # The re-ask continues the conversation: the model sees what it wrote and why
            # it did not apply, as a reviewer would tell it. Only what changed is sent again:
            # the files as they are now (with the edits that did apply); the tests and the
            # repository map, unchanged since the first message, are left out.
            wanted = [p for p in (e.path for e in parse_edits(answer)) if self._plain_file(p)]
            wanted = [p for p in wanted if p not in policy.frozen]
            paths = dict.fromkeys([*facts.get("files", {}), *wanted])
            again = {**facts, "files": self._read(list(paths))} if "files" in facts else facts
            for key in ("tests", "repo_map"):
                if key in again:
                    again[key] = _empty_like(again[key])
            messages = [
                *self.prompt(persona, template, again, keep),
                {"role": "assistant", "content": answer},
                {"role": "user", "content": f"{feedback}\n\n{REASK_NOTE}"},
            ]
        return applied

    def _plain_file(self, rel: str) -> bool:
        """A file inside the worktree, not hidden (what a model names is not trusted)."""
        root = self.ws.path.resolve()
        full = (root / rel).resolve()
        inside = full.is_relative_to(root) and full.is_file()
        return inside and not any(part.startswith(".") for part in full.relative_to(root).parts)
