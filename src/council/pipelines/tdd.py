"""The TDD flow behind `council run`: plan, context, tests first (red), code to green, review.

Every claim is checked by running the real tests: the tests must fail before code exists, are
frozen once accepted, and the run is green only when the real suite passes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from council.config import CouncilConfig
from council.context import build_context
from council.edits import EditPolicy, apply_edits, feedback_for, parse_edits
from council.errors import CouncilError, ToolchainError, UsageError
from council.events import EditApplied, EditRefused, Emitter, Notice, ReviewMade
from council.personas import ContextSelection, Plan, Review
from council.pipelines.engine import StepOutput
from council.pipelines.lifecycle import REPORT_FILE, Flow, Outcome, Stop
from council.pipelines.models import cache_root
from council.pipelines.testruns import Selection, TestRuns
from council.pipelines.tracks import Track, discover_tracks
from council.store import RunRecord, Store
from council.toolchains import TestReport
from council.toolchains.gates import preexisting_note
from council.toolchains.test_ids import TestIdError, TestTarget, parse_test_spec
from council.workspace import (
    changed_files,
    conventional_message,
    diff,
    file_sha256,
    require_git_repo,
    restore_tree,
    slugify,
    snapshot_tree,
)
from council.workspace.changes import change_scope
from council.workspace.git import out as git_out
from council.workspace.git import require_commit
from council.workspace.tamper import guard_for

__all__ = ["REPORT_FILE", "Outcome", "RunOutcome", "TddPipeline"]

RunOutcome = Outcome  # the name the tests and benches know

MAX_CONTEXT_FILES = 8
MAX_PARALLEL_TRACKS = 3  # language tracks that test and iterate at the same time
REASK_NOTE = (
    "(The tests and the repository map are as in your first request; they are not repeated "
    "here. The files above are as they are now.)"
)
_SKIP = {"node_modules", "__pycache__", "target", "build", "dist", "venv"}


def _given_target(repo: Path, spec: str) -> str:
    """A `--tests` value (a file, a test id, or a file with -k / -t) in canonical form, its
    path repo-relative; the file must exist inside the repository."""
    try:
        target = parse_test_spec(spec)
    except TestIdError as exc:
        raise UsageError(str(exc)) from None
    if target.name and not target.path.endswith(".java") and "/" not in target.path:
        java = _java_test_file(repo, target.path)
        if java:
            return str(target.with_path(java))
    return str(target.with_path(_repo_relative(repo, target.path)))


def _java_test_file(repo: Path, name: str) -> str:
    """The test file of a JUnit class given as `CalcTest` or `demo.CalcTest`, or ''."""
    if not name.replace(".", "").replace("_", "").replace("$", "").isalnum():
        return ""
    tail = name.replace(".", "/") + ".java"
    found = sorted(
        p.relative_to(repo).as_posix()
        for p in repo.rglob(Path(tail).name)
        if p.as_posix().endswith("/" + tail) and ".git" not in p.relative_to(repo).parts
    )
    if len(found) > 1:
        tests = [f for f in found if "/test/" in f]
        found = tests or found
    return found[0] if found else ""


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


def _empty_like(value: Any) -> Any:
    return "" if isinstance(value, str) else {}


def _repo_relative(repo: Path, path: str) -> str:
    """A given test path as repo-relative POSIX text; it must be a file inside the repo."""
    root = repo.resolve()
    candidate = Path(path)
    # Relative paths may be given from where the user stands or from the repository's top.
    options = [candidate] if candidate.is_absolute() else [Path.cwd() / candidate, root / candidate]
    for option in options:
        full = option.resolve()
        if full.is_relative_to(root) and full.is_file():
            return full.relative_to(root).as_posix()
    if all(not o.resolve().is_relative_to(root) for o in options):
        raise UsageError(f"--tests {path}: not inside the repository {repo}")
    raise UsageError(f"--tests {path}: no such file in {repo}")


def _counts(report: TestReport) -> str:
    return report.brief_counts()


def _all_counts(results: list[tuple[Track, TestReport]]) -> str:
    if len(results) == 1:
        return _counts(results[0][1])
    return "; ".join(f"{t.language}: {_counts(r)}" for t, r in results)


class TddPipeline(Flow):
    """One `council run`. Create with `start()` for a new run or `resume()` for a stored one."""

    kind = "run"

    def __init__(self, *, run: RunRecord, config: CouncilConfig, store: Store, emit: Emitter):
        super().__init__(run=run, config=config, store=store, emit=emit)
        self.open_pr = bool(self.params.get("open_pr"))
        # Tests-given mode: a person wrote these; Guardian writes none, they are frozen at once.
        # Each is a test file, or a test id in it (`path::name`, `path -k expr`).
        self.given_targets = [parse_test_spec(s) for s in self.params.get("given_tests") or []]
        self.given_tests = list(dict.fromkeys(t.path for t in self.given_targets))
        self.runs: TestRuns | None = None
        self.preexisting: dict[str, set[str]] = {}  # per track: tests failing on the base too
        self.tracks: list[Track] = discover_tracks(self.repo, config)
        self.skipped_languages: list[str] = []

    @classmethod
    def check(
        cls, repo: Path, config: CouncilConfig, feature: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        top = require_git_repo(repo)
        require_commit(top)
        if top != repo.resolve():
            raise UsageError(
                f"{repo} is inside the git repository {top} but is not its top level",
                hint="council works on a repository's top level: run it there, or copy the "
                "project into a repository of its own (scripts/demo does this for the example).",
            )
        if not feature.strip():
            raise UsageError("the feature request is empty")
        discover_tracks(repo, config)  # no project or a bad gate command: stop before starting
        given = [_given_target(repo, p) for p in params.get("given_tests") or []]
        return {"open_pr": bool(params.get("open_pr")), "given_tests": given}

    def details(self) -> dict[str, Any]:
        return {"pr_url": str(self.steps.done.get("pr", {}).get("url", ""))}

    # --- the flow ----------------------------------------------------------------------------

    def flow(self) -> tuple[str, str]:
        self.setup_worktree(slugify(self.feature))
        if self.given_tests:
            # Only the languages the given tests belong to have work to do.
            self.tracks = [t for t in self.tracks if any(t.owns(p) for p in self.given_tests)]
        # The test environments are built before the first model call, so they overlap the
        # model library's loading (the CLI starts it in a thread) instead of following it.
        self._prepare_tracks()
        self.runs = TestRuns(
            self.ws.path,
            timeout_s=self.config.limits.test_timeout_s,
            full_timeout_s=self.config.limits.full_suite_timeout_s,
            emit=self.emit,
            tree_of=self._track_tree,
            test_files=self._test_files_in_tree,
        )
        base_tree = self._head_tree()
        if self.given_tests:
            # Tests-given mode needs no model to go red, and no baseline run of its own: the
            # red run of the given tests is the baseline (no code has changed yet). It comes
            # first, so tests that cannot start the run cost no model call.
            reds = self._each(lambda t: self._tests_step(t, None, None, base_tree))
        plan = Plan.model_validate(self.steps.run("plan", self._plan, persona="pacer"))
        context = self.steps.run("context", lambda: self._context(plan), persona="maven")
        if not self.given_tests:
            self.steps.run("baseline", lambda: self._baseline(context))
            reds = self._each(lambda t: self._tests_step(t, plan, context, base_tree))
        why = (
            "Tests given by the user; frozen from the start."
            if self.given_tests
            else "Tests written first by Guardian; they fail until the feature exists."
        )
        self.steps.run("commit-tests", lambda: self._commit("test", plan, "", why))
        frozen: dict[str, str] = {p: h for red in reds for p, h in red["frozen"].items()}
        guard_for(self.ws.path).freeze(frozen)  # read-only and checked in every test run
        targets = {
            t.root: [parse_test_spec(x) for x in red.get("targets", red["test_files"])]
            for t, red in zip(self.tracks, reds, strict=True)
        }
        lasts = self._each(lambda t: self._iterate(t, plan, context, frozen, targets[t.root]))
        failed = [
            (t, last) for t, last in zip(self.tracks, lasts, strict=True) if not last["green"]
        ]
        if failed:
            reasons = [last["reason"] for _, last in failed]
            if len(self.tracks) > 1:
                reasons = [f"{t.language}: {last['reason']}" for t, last in failed]
            raise Stop("failed", "; ".join(reasons))

        def restore_last() -> None:
            for track, last in zip(self.tracks, lasts, strict=True):
                self._restore_track(track, last["tree"])

        review = self.steps.run(
            "review",
            lambda: self._review_and_polish(plan, context, frozen, targets),
            persona="guardian",
            restore=restore_last,
        )
        self.steps.run("commit", lambda: self._commit_feature(plan, review))
        if self.open_pr:
            self.steps.run("pr", lambda: self._open_pr(plan, review))
        if self.skipped_languages:
            skipped = ", ".join(m.split(":")[0] for m in self.skipped_languages)
            return (
                "green",
                f"tests green, reviewed and committed; skipped (toolchain missing): {skipped}",
            )
        return "green", "tests green, reviewed and committed"

    def _prepare_tracks(self) -> None:
        """Build each language's test environment; a missing toolchain drops only its track."""
        ready, missing = [], []
        for track in self.tracks:
            try:
                track.prepare(self.ws.path, cache_root() / "envs", self.emit)
                ready.append(track)
            except ToolchainError as exc:
                if len(self.tracks) == 1:
                    raise
                what = " ".join(str(exc).split())  # the message and how to install the tool
                missing.append(f"{track.language}: {what}")
                self.emit(
                    Notice(
                        level="error",
                        message=f"{track.language} skipped, its toolchain is missing: {what}",
                    )
                )
        if not ready:
            raise ToolchainError("no language's toolchain is available: " + "; ".join(missing))
        self.tracks = ready
        self.skipped_languages = missing

    def _each(self, fn: Callable[[Track], Any]) -> list[Any]:
        """`fn(track)` for every track: inline for one, in a bounded pool for several."""
        if len(self.tracks) == 1:
            return [fn(self.tracks[0])]
        with ThreadPoolExecutor(
            max_workers=min(len(self.tracks), MAX_PARALLEL_TRACKS), thread_name_prefix="track"
        ) as pool:
            return list(pool.map(fn, self.tracks))

    def _tests_step(
        self, track: Track, plan: Plan | None, context: StepOutput | None, base: str
    ) -> StepOutput:
        if self.given_tests:
            fn, persona = (lambda: self._take_given_tests(track)), None
        else:
            fn, persona = (lambda: self._write_tests(track, plan, context)), "guardian"
        return self.steps.run(
            f"tests{track.suffix}",
            fn,
            persona=persona,
            restore=lambda: self._restore_track(track, base),
        )

    def _restore_track(self, track: Track, tree: str) -> None:
        restore_tree(self.ws, tree, paths=[track.root] if track.root else ())

    # --- steps -------------------------------------------------------------------------------

    # --- steps -------------------------------------------------------------------------------

    def _baseline(self, context: StepOutput) -> StepOutput:
        """The existing tests that reach the files in context, before any change, so
        pre-existing failures are not ours (the whole suite with `limits.full_suite: always`)."""
        always = self.config.limits.full_suite == "always"
        code = [p for p in context.get("files", []) if (self.ws.path / p).is_file()]
        selection = Selection(changed=tuple(code), full=always)
        results = [
            (t, r)
            for t, r in self._each(lambda t: (t, self.runs.run(t, selection, "baseline")))
            if r is not None
        ]
        for track, report in results:
            if report.not_passing or report.timed_out:
                self.emit(
                    Notice(
                        level="warning",
                        message=f"the existing {track.language} tests already fail before any "
                        f"change ({_counts(report)}); the run can only end green if they pass too",
                    )
                )
        if not results:
            return {"passed": 0, "green": True, "detail": "no existing test reaches that code"}
        return {
            "passed": sum(r.passed for _, r in results),
            "green": all(r.green for _, r in results),
            "detail": _all_counts(results),
        }

    def _track_tree(self, track: Track) -> str:
        """The hash of the track's files as they are now (untracked included): a test result
        is valid for exactly this tree."""
        tree = snapshot_tree(self.ws)
        return git_out(self.ws.path, "rev-parse", f"{tree}:{track.root}") if track.root else tree

    def _loop_selection(self, track: Track, targets: list[TestTarget], frozen: dict[str, str]):
        """The tests that matter in the loop: the given or new ones and those the change
        reaches (everything with `limits.full_suite: always`)."""
        changed = tuple(self._changed_code(frozen, track))
        return Selection(tuple(targets), changed, full=self.config.limits.full_suite == "always")

    def _final_gate(
        self, targets: dict[str, list[TestTarget]], frozen: dict[str, str], phase: str
    ) -> list[tuple[Track, TestReport]]:
        """The full suite once before review (`limits.full_suite`); `never`: the loop's tests.
        A tree tested already is not run again."""
        self._check_frozen(frozen)
        never = self.config.limits.full_suite == "never"

        def gate(track: Track) -> tuple[Track, TestReport]:
            selection = (
                self._loop_selection(track, targets[track.root], frozen)
                if never
                else Selection(full=True)
            )
            return track, self.runs.run(track, selection, phase)

        return self._each(gate)

    def _run_selected(self, track: Track, targets: list[TestTarget], phase: str) -> TestReport:
        report = self.runs.run(track, Selection(tuple(targets)), phase)
        if report is None:
            raise CouncilError(f"no {track.language} test to run for {phase}")
        return report

    def _plan(self) -> StepOutput:
        ctx = build_context(
            self.ws.path,
            self.feature,
            map_tokens=self.config.context.map_tokens,
            file_tokens=0,
            cache_dir=cache_root() / "tags",
        )
        plan: Plan = self.ask(
            "pacer",
            "plan",
            Plan,
            feature=self.feature,
            projects=self._projects(),
            repo_map=ctx.repo_map,
        )
        return plan.model_dump()

    def _context(self, plan: Plan) -> StepOutput:
        query = f"{self.feature}\n{plan.model_dump_json()}"
        mentioned = [f for t in plan.tasks for f in t.files]
        first = build_context(
            self.ws.path,
            query,
            mentioned_paths=mentioned,
            map_tokens=self.config.context.map_tokens,
            file_tokens=0,
            cache_dir=cache_root() / "tags",
        )
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
        ctx = build_context(
            self.ws.path,
            query,
            mentioned_paths=[*existing, *mentioned],
            map_tokens=self.config.context.map_tokens,
            file_tokens=self.config.context.file_tokens,
            cache_dir=cache_root() / "tags",
        )
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

    def _projects(self) -> list[dict[str, str]]:
        return [
            {
                "language": t.language,
                "root": t.root or ".",
                "framework": t.framework,
                "naming": t.test_naming,
                "test_dir": t.test_dir,
            }
            for t in self.tracks
        ]

    @staticmethod
    def _plan_text(plan: Plan) -> str:
        lines = [plan.summary]
        for t in plan.tasks:
            lines.append(f"- {t.id} [{t.language}] {t.title}: {t.description}".rstrip(": "))
            lines.extend(f"    * {c}" for c in t.acceptance_criteria)
        if plan.contract:
            lines.append(f"Contract: {plan.contract}")
        return "\n".join(lines)

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

    def _read(self, paths: list[str]) -> dict[str, str]:
        out = {}
        for p in paths:
            f = self.ws.path / p
            if f.is_file():
                out[p] = f.read_text(encoding="utf-8", errors="replace")
        return out

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

    def _test_files_in_tree(self, track: Track) -> list[str]:
        """Repo-relative paths of the track's test files as they are in the worktree."""
        out = []
        base = track.project_dir(self.ws.path)
        for folder, dirs, files in os.walk(base):
            dirs[:] = [d for d in dirs if d not in _SKIP and not d.startswith(".")]
            for name in files:
                rel = (Path(folder) / name).relative_to(self.ws.path).as_posix()
                if track.is_test_file(rel):
                    out.append(rel)
        return sorted(out)

    def _take_given_tests(self, track: Track) -> StepOutput:
        """Tests-given mode: bring the user's tests into the worktree; they must fail first."""
        given = [p for p in self.given_tests if track.owns(p)]
        for rel in given:
            source, target = self.repo / rel, self.ws.path / rel
            data = source.read_bytes()  # the user's checkout is only read
            if not target.is_file() or target.read_bytes() != data:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        targets = [t for t in self.given_targets if track.owns(t.path)]
        report = self._run_selected(track, targets, "red-1")
        # pytest says "not found: <id>" for a node id that names no test.
        unknown_id = "not found:" in report.output_tail
        unmatched = [
            str(t)
            for t in targets
            if t.narrowed
            and not any(c.id.startswith(track.local(t.path) + "::") for c in report.cases)
            and (unknown_id or not (report.collection_errors or report.timed_out))
        ]
        if unmatched:
            raise Stop("failed", f"--tests {', '.join(unmatched)}: no such test in that file")
        problem = self._red_problem(track, report)
        if problem:
            if "PASS before" in problem:
                problem = "the given tests already pass before any code is written: nothing to do"
            raise Stop("failed", f"the given tests cannot start the run: {problem}")
        frozen = {
            p: file_sha256(self.ws.path / p)
            for p in sorted({*self._test_files_in_tree(track), *given})
        }
        return {
            "test_files": given,
            "targets": [str(t) for t in targets],
            "frozen": frozen,
            "signature": report.signature(),
            "detail": f"red: {_counts(report)}",
        }

    def _write_tests(self, track: Track, plan: Plan, context: StepOutput) -> StepOutput:
        test_files = [p for p in plan.test_files if track.owns(p)]
        if not test_files and track.language == "python":
            scope = slugify(plan.scope or "feature").replace("-", "_")
            test_files = [f"{track.test_dir}/test_{scope}.py"]
        before = self._snapshot(self._test_files_in_tree(track))
        policy = EditPolicy(max_file_bytes=self.config.limits.max_file_bytes)
        feedback = ""
        for attempt in range(1, self.config.limits.max_test_attempts + 1):
            written = self._edit_round(
                "guardian",
                "tests",
                policy,
                only_tests=track,
                scope_note=self._scope_note(track),
                feature=self.feature,
                plan=self._plan_text(plan),
                notes=context.get("notes", ""),
                repo_map=context["repo_map"],
                files={**self._read(context["files"]), **self._excerpts(context)},
                framework=track.framework,
                test_files=test_files or [f"{track.test_dir}/ ({track.test_naming})"],
                test_dir=track.test_dir,
                feedback=feedback,
            )
            written = [p for p in written if track.is_test_file(p)]
            if not written:
                feedback = self.prompts.text("feedback_no_tests")
                continue
            report = self._run_selected(track, [TestTarget(p) for p in written], f"red-{attempt}")
            feedback = self._red_problem(track, report)
            if not feedback:
                frozen = {p: file_sha256(self.ws.path / p) for p in self._test_files_in_tree(track)}
                return {
                    "test_files": written,
                    "frozen": frozen,
                    "signature": report.signature(),
                    "detail": f"red: {_counts(report)}",
                }
            self.emit(
                Notice(level="warning", message=f"tests rejected: {feedback.splitlines()[0]}")
            )
            # Start the next attempt from the original tests, not from the rejected ones.
            self._restore(before, written)
        raise Stop(
            "failed",
            f"Guardian did not produce valid failing {'' if track.solo else track.language + ' '}"
            "tests in "
            f"{self.config.limits.max_test_attempts} attempts: {feedback.splitlines()[0]}",
        )

    def _head_tree(self) -> str:
        return git_out(self.ws.path, "rev-parse", "HEAD^{tree}")

    def _hash_or_none(self, rel: str) -> str | None:
        f = self.ws.path / rel
        return file_sha256(f) if f.is_file() else None

    def _red_problem(self, track: Track, report: TestReport) -> str:
        """Why a red report is not an acceptable TDD start, or '' when it is."""
        broken = [c for c in report.collection_errors if track.classify(c) == "broken_test"]
        if broken:
            return self.prompts.text("feedback_red", problem="broken", broken=broken)
        # A library the project lacks: no code the council writes makes these tests compile.
        needs = [c for c in report.collection_errors if track.classify(c) == "missing_library"]
        if needs:
            return self.prompts.text("feedback_red", problem="missing_library", needs=needs)
        if report.timed_out:
            return self.prompts.text("feedback_red", problem="hung")
        missing_code = bool(report.collection_errors)
        if report.green or (report.failed + report.errors == 0 and not missing_code):
            if report.passed == 0:
                return self.prompts.text(
                    "feedback_red",
                    problem="none_collected",
                    framework=track.framework,
                    naming=track.test_naming,
                )
            return self.prompts.text("feedback_red", problem="pass_early")
        return ""

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

    def _changed_code(self, frozen: dict[str, str], track: Track | None = None) -> list[str]:
        return [
            p
            for p in changed_files(self.ws)
            if p not in frozen and p != REPORT_FILE and (track is None or track.owns(p))
        ]

    def _scope_note(self, track: Track) -> str:
        if track.solo:
            return ""
        return self.prompts.text("scope_note", language=track.language, root=track.root)

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
            "counts": _counts(report),
            "failures": report.failure_summary(),
            "detail": _counts(report),
        }

    def _check_frozen(self, frozen: dict[str, str]) -> None:
        # The edit policy refuses edits to frozen files; this is the belt to those braces.
        for path, digest in frozen.items():
            if self._hash_or_none(path) != digest:
                raise CouncilError(f"frozen test file {path} changed; refusing to continue")

    def _gate_findings(self, paths: list[str]) -> tuple[str, bool, list[dict[str, Any]]]:
        """Run lint, format, typecheck and SAST on the changed code: (text, must_fix, rows).
        Only findings on the change count; pre-existing ones are reported apart."""
        scope = change_scope(self.ws)
        gates = [g for t in self.tracks for g in t.gates(self.ws.path, paths, self.emit, scope)]
        lines: list[str] = []
        must_fix = False
        rows = []
        for g in gates:
            rows.append({"gate": g.name, "passed": g.passed, "findings": len(g.findings)})
            if g.preexisting:
                rows[-1]["preexisting"] = len(g.preexisting)
                self.emit(Notice(message=preexisting_note(g)))
            for f in g.findings:
                lines.append(f"- [{g.name}/{f.severity}] {f.file}:{f.line} {f.code} {f.message}")
                if g.name == "sast" and f.severity.lower() == "high":
                    must_fix = True
            if not g.passed and g.name in ("lint", "typecheck"):
                must_fix = True
        return "\n".join(lines), must_fix, rows

    def _review_and_polish(
        self,
        plan: Plan,
        context: StepOutput,
        frozen: dict[str, str],
        targets: dict[str, list[TestTarget]],
    ) -> StepOutput:
        code = self._changed_code(frozen)
        findings, must_fix, gates = self._gate_findings(code)
        results = self._final_gate(targets, frozen, "full-suite")
        self._require_green(results)
        counts = _all_counts(results)
        review = self._review(counts, findings)
        polished = False
        if review.high or must_fix:
            polished = self._polish(plan, context, frozen, review, findings, targets)
            if polished:
                findings, _, gates = self._gate_findings(code)
                counts = _all_counts(self._final_gate(targets, frozen, "full-suite"))
                review = self._review(counts, findings)
        return {
            "review": review.model_dump(),
            "gates": gates,
            "findings": findings,
            "polished": polished,
            "counts": counts,
            "detail": f"verdict {review.verdict}, {len(review.comments)} comments",
        }

    def _review(self, counts: str, findings: str) -> Review:
        review: Review = self.ask(
            "guardian",
            "review",
            Review,
            feature=self.feature,
            counts=counts,
            findings=findings,
            diff=diff(self.ws)[:60_000],
        )
        self.emit(
            ReviewMade(verdict=review.verdict, comments=[c.model_dump() for c in review.comments])
        )
        return review

    def _require_green(self, results: list[tuple[Track, TestReport]]) -> None:
        """The final gate must pass, but for tests that fail on the base commit as well (not
        ours to fix: reported, not blocking). A test the change broke outside the loop's
        selection ends the run here, with the failing tests named."""
        parts = []
        for track, report in results:
            if report.green:
                continue
            new = self._new_failures(track, report)
            if not new and not report.timed_out:
                continue
            ids = ", ".join(new[:10])
            running = ", ".join(report.running[:5])
            label = f"{track.language}: " if len(self.tracks) > 1 else ""
            parts.append(
                f"{label}{_counts(report)}{': ' + ids if ids else ''}"
                + (f"; still running at the limit: {running}" if running else "")
            )
        if parts:
            raise Stop("failed", "the full test suite does not pass: " + "; ".join(parts))

    def _new_failures(self, track: Track, report: TestReport) -> list[str]:
        """The failing tests of `report` that pass on the base commit (the change broke them).
        The others are run once on the base commit's code to tell; known ones are not rerun."""
        failing = [c for c in report.not_passing if not c.id.startswith("<")]
        known = self.preexisting.setdefault(track.root, set())
        unknown = [c for c in failing if c.id not in known]
        if unknown and not report.timed_out and len(failing) == len(report.not_passing):
            now = snapshot_tree(self.ws)
            base = git_out(self.ws.path, "rev-parse", f"{self.ws.base_sha}^{{tree}}")
            before = None
            try:
                self._restore_track(track, base)
                # Tests in files the base commit does not have are this run's own.
                targets = tuple(
                    TestTarget(track.repo_path(file), name)
                    for file, _, name in (c.id.partition("::") for c in unknown)
                    if (track.project_dir(self.ws.path) / file).is_file()
                )
                if targets:
                    before = self.runs.run(track, Selection(targets), "base-check")
            finally:
                self._restore_track(track, now)
            failed_before = {c.id for c in before.not_passing} if before else set()
            known |= {c.id for c in unknown if c.id in failed_before}
            if known:
                self.emit(
                    Notice(
                        level="warning",
                        message=f"{len(known)} {track.language} tests fail on the base commit "
                        f"too, not because of this change: {', '.join(sorted(known)[:10])}",
                    )
                )
        return [c.id for c in report.not_passing if c.id not in known]

    def _polish(
        self,
        plan: Plan,
        context: StepOutput,
        frozen: dict[str, str],
        review: Review,
        findings: str,
        targets: dict[str, list[TestTarget]],
    ) -> bool:
        """One Artisan pass on high findings; kept only if the tests stay green."""
        code = self._changed_code(frozen)
        snapshot = self._snapshot(code)
        issues = "\n".join(
            f"- [{c.severity}] {c.file}:{c.line or ''} {c.message}"
            for c in review.comments
            if c.severity in ("high", "medium")
        )
        policy = EditPolicy(frozen=frozen, max_file_bytes=self.config.limits.max_file_bytes)
        touched = self._edit_round(
            "artisan",
            "refine",
            policy,
            scope_note="",
            feature=self.feature,
            iteration=0,
            counts="",
            failures="",
            findings="\n".join(x for x in (issues, findings) if x),
            files={p: t for p, t in self._read(code).items()},
            tests=self._read([t.path for ts in targets.values() for t in ts]),
        )
        results = self._final_gate(targets, frozen, "polish")
        if all(r.green or not self._new_failures(t, r) for t, r in results):
            return bool(touched)
        self.emit(Notice(level="warning", message="refinement broke the tests; reverted it"))
        self._restore(snapshot, touched)
        return False

    def _snapshot(self, paths: list[str]) -> dict[str, bytes | None]:
        return {
            p: (self.ws.path / p).read_bytes() if (self.ws.path / p).is_file() else None
            for p in paths
        }

    def _restore(self, snapshot: dict[str, bytes | None], touched: list[str]) -> None:
        """Put files back as snapshotted; files touched since but not in it did not exist."""
        for p in set(touched) | set(snapshot):
            data = snapshot.get(p)
            if data is None:
                (self.ws.path / p).unlink(missing_ok=True)
            else:
                (self.ws.path / p).write_bytes(data)

    def _commit(self, kind: str, plan: Plan, prefix: str, body: str = "") -> StepOutput:
        message = conventional_message(kind, plan.scope or None, f"{prefix}{plan.summary}", body)
        sha = self.commit(message)
        return {"sha": sha, "detail": sha[:10] if sha else "nothing to commit"}

    def _commit_feature(self, plan: Plan, review_out: StepOutput) -> StepOutput:
        changed = guard_for(self.ws.path).verify()
        if changed:  # never a feat: commit over tests that are not the frozen ones
            raise Stop(
                "failed", f"frozen test files changed before the commit: {', '.join(changed)}"
            )
        return self._commit("feat", plan, "", self._review_text(review_out))

    @staticmethod
    def _review_text(review_out: StepOutput) -> str:
        review = Review.model_validate(review_out["review"])
        lines = [f"Tests: {review_out['counts']}", f"Review ({review.verdict}): {review.summary}"]
        lines += [
            f"- [{c.severity}] {c.file}{':' + str(c.line) if c.line else ''} {c.message}"
            for c in review.comments
        ]
        gates = ", ".join(
            f"{g['gate']} {'ok' if g['passed'] else str(g['findings']) + ' findings'}"
            for g in review_out.get("gates", [])
        )
        if gates:
            lines.append(f"Gates: {gates}")
        lines.append("Reviewed-by: AI Council (Guardian)")
        return "\n".join(lines)

    def _open_pr(self, plan: Plan, review_out: StepOutput) -> StepOutput:
        from council.workspace.github import open_pull_request

        pr = open_pull_request(
            self.ws,
            title=conventional_message("feat", plan.scope or None, plan.summary).strip(),
            body=self._review_text(review_out),
            base=self.steps.done["setup"]["base_branch"],
            emit=self.emit,
        )
        return {"url": pr.url, "number": pr.number, "detail": pr.url}

    def failure_report(self, reason: str) -> list[str]:
        lines: list[str] = []
        for name, out in self.steps.done.items():
            if name.startswith("iteration-"):
                failures = out.get("failures", "")
                lines += [f"## {name}: {out.get('counts', '')}", "", "```", failures, "```", ""]
        return lines

    def failure_scope(self) -> str | None:
        plan = self.steps.done.get("plan")
        return Plan.model_validate(plan).scope if plan else None
