"""The iterate steps: Builder, then Artisan on the failures, until the tests are green, the
iterations are used up or an iteration fails exactly like the one before."""

from __future__ import annotations

import re

from council.edits import EditPolicy
from council.personas import Plan
from council.pipelines.engine import StepOutput
from council.pipelines.run.base import RunBase, counts
from council.pipelines.tracks import Track
from council.toolchains.test_ids import TestTarget
from council.workspace import snapshot_tree

_FAILURE_NAMES = re.compile(r"::([\w$]+)|\bin ([A-Za-z_$][\w$]*)|\b(test_\w+)")


_KEYWORD_OPERATORS = {"and", "or", "not"}


def _names_that_matter(targets: list[TestTarget], failures: str) -> list[str]:
    """Names whose definitions an excerpt of a long file keeps: the tests named on `--tests`
    and the tests and functions in the last failure output."""
    names = [t.name.split("::")[-1].split(" > ")[-1] for t in targets if t.name]
    for t in targets:
        names += [w for w in re.findall(r"[\w$]+", t.keyword) if w not in _KEYWORD_OPERATORS]
    for match in _FAILURE_NAMES.finditer(failures):
        names.append(next(g for g in match.groups() if g))
    return list(dict.fromkeys(n for n in names if n not in ("module", "<module>")))[:40]


class IterateSteps(RunBase):
    def _iterate(
        self,
        track: Track,
        plan: Plan,
        context: StepOutput,
        frozen: dict[str, str],
        targets: list[TestTarget],
    ) -> StepOutput:
        # Parallel tracks keep out of each other's folders.
        others = [f"{t.root}/**" for t in self.tracks if t is not track and t.root]
        policy = EditPolicy(
            frozen=frozen,
            forbidden_globs=others,
            max_file_bytes=self.config.limits.max_file_bytes,
            is_test_file=self._is_test_path,
        )
        previous: StepOutput | None = None
        tree = self._head_tree()  # the tests commit: where iteration 1 starts
        for i in range(1, self.config.limits.max_iterations + 1):
            name = f"iteration-{i}{track.suffix}"
            persona = "builder" if i == 1 else "artisan"
            out = self.steps.run(
                name,
                lambda i=i, persona=persona, previous=previous: self._one_iteration(
                    track, i, persona, plan, context, policy, targets, previous
                ),
                persona=persona,
                restore=lambda tree=tree: self._restore_track(track, tree),
            )
            tree = out["tree"]
            if out["green"]:
                return out
            if previous is not None and out["signature"] == previous["signature"]:
                return {
                    **out,
                    "reason": f"no progress: iteration {i} failed exactly like iteration {i - 1}"
                    f" ({out['counts']})",
                }
            previous = out
        return {
            **previous,
            "reason": f"not green after {self.config.limits.max_iterations} "
            f"iterations: {previous['counts']}",
        }

    def _one_iteration(
        self,
        track: Track,
        i: int,
        persona: str,
        plan: Plan,
        context: StepOutput,
        policy: EditPolicy,
        targets: list[TestTarget],
        previous: StepOutput | None,
    ) -> StepOutput:
        # Only the tests that matter go into the prompt: the given or new ones, and the files
        # of tests that failed last time (all test files stay frozen all the same).
        failing = previous.get("failing_files", []) if previous else []
        tests = self._read(list(dict.fromkeys([*(t.path for t in targets), *failing])))
        mine = [p for p in context["files"] if track.owns(p)]
        files = self._read(list(dict.fromkeys([*mine, *self._changed_code(policy.frozen, track)])))
        files = {p: t for p, t in files.items() if p not in policy.frozen}
        files.update(self._excerpts(context, {*files, *policy.frozen}, track))
        note = self._scope_note(track)
        keep = _names_that_matter(targets, previous["failures"] if previous else "")
        if persona == "builder":
            self._edit_round(
                persona,
                "build",
                policy,
                keep=keep,
                scope_note=note,
                feature=self.feature,
                plan=self._plan_text(plan),
                notes=context.get("notes", ""),
                repo_map=context["repo_map"],
                files=files,
                tests=tests,
            )
        else:
            self._edit_round(
                persona,
                "refine",
                policy,
                keep=keep,
                scope_note=note,
                feature=self.feature,
                iteration=i - 1,
                counts=previous["counts"] if previous else "",
                failures=previous["failures"] if previous else "",
                findings="",
                files=files,
                tests=tests,
            )
        self._check_frozen(policy.frozen)
        selection = self._loop_selection(track, targets, policy.frozen)
        report = self.runs.run(track, selection, f"iteration-{i}")
        failing_files = sorted(
            {track.repo_path(c.file) for c in report.not_passing if c.file} & set(policy.frozen)
        )
        return {
            "failing_files": failing_files,
            "green": report.green,
            "tree": snapshot_tree(self.ws),  # where the next step starts, also on resume
            "signature": report.signature(),
            "counts": counts(report),
            "failures": report.failure_summary(),
            "detail": counts(report),
        }
