"""The context step: Maven picks the files, docs and excerpts the others need."""

from __future__ import annotations

from council.personas import ContextSelection, Plan
from council.pipelines.engine import StepOutput
from council.pipelines.run.base import RunBase
from council.pipelines.tracks import Track

MAX_CONTEXT_FILES = 8


class ContextSteps(RunBase):
    def _context(self, plan: Plan) -> StepOutput:
        query = f"{self.feature}\n{plan.model_dump_json()}"
        mentioned = [f for t in plan.tasks for f in t.files]
        first = self._map(query, mentioned)
        selection: ContextSelection = self.ask(
            "maven",
            "context",
            ContextSelection,
            feature=self.feature,
            plan=self._plan_text(plan),
            repo_map=f"{first.candidate_list()}\n{first.repo_map}",
            max_files=MAX_CONTEXT_FILES,
        )
        existing = [p for p in selection.files if (self.ws.path / p).is_file()]
        ctx = self._map(query, [*existing, *mentioned], files=True)
        return {
            "repo_map": ctx.repo_map,
            "files": [p for p in ctx.files if p not in ctx.excerpts],
            # Large files travel as their relevant definitions (issue 16), labelled as excerpts.
            "excerpts": {p: [e.label, e.text] for p, e in ctx.excerpts.items()},
            "notes": selection.notes,
            # The map outlines the files not shown: none left over is "nothing else to map",
            # not a puzzling "map 0 tokens".
            "detail": f"{len(ctx.files)} files ({len(ctx.excerpts)} as excerpts), "
            + (
                f"map of the other files {ctx.map_tokens} tokens"
                if ctx.map_tokens
                else "nothing else to map"
            ),
        }

    @staticmethod
    def _excerpts(
        context: StepOutput,
        skip: frozenset[str] | set[str] = frozenset(),
        track: Track | None = None,
    ) -> dict[str, str]:
        """Maven's excerpts of large files, keyed by a label saying what they are."""
        return {
            label: text
            for path, (label, text) in context.get("excerpts", {}).items()
            if path not in skip and (track is None or track.owns(path))
        }
