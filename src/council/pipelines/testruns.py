"""The test runs of one `council run`: which tests a step needs, and each tree tested only once.

A step asks for a `Selection`: the tests that matter (the given or new ones, as `TestTarget`s),
the source files changed so far (the tests they reach run too: Python by import graph, Java by
class references, Jest/Vitest through their related mode), or the full suite. A result is kept
under the track's tree hash and the resolved selection, so asking again with nothing changed
returns it without running anything: the baseline of tests-given mode is the red run, and the
pre-review run is skipped when the tree is unchanged since green.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from council.events import Emitter, Notice
from council.pipelines.tracks import Track
from council.toolchains import TestCase, TestReport
from council.toolchains.test_ids import TestTarget


@dataclass(frozen=True)
class Selection:
    """What one test run covers (repo-relative paths)."""

    targets: tuple[TestTarget, ...] = ()
    changed: tuple[str, ...] = ()  # source files changed since the base commit
    full: bool = False


@dataclass(frozen=True)
class Resolved:
    """A selection as the runner gets it."""

    paths: tuple[str, ...]  # runner arguments: test files or node ids ("" for none)
    related: tuple[str, ...]  # changed sources for the runner's related mode (Jest/Vitest)
    full: bool

    @property
    def empty(self) -> bool:
        return not (self.full or self.paths or self.related)


class TestRuns:
    """Runs selections for the pipeline's tracks and remembers each result by tree."""

    __test__ = False

    def __init__(
        self,
        worktree: Path,
        *,
        timeout_s: float,
        full_timeout_s: float,
        emit: Emitter,
        tree_of: Callable[[Track], str],
        test_files: Callable[[Track], list[str]],
    ) -> None:
        self.worktree = worktree
        self.timeout_s = timeout_s
        self.full_timeout_s = full_timeout_s
        self.emit = emit
        self.tree_of = tree_of
        self.test_files = test_files
        self._results: dict[tuple, tuple[str, TestReport]] = {}
        self._seen: dict[tuple[str, str], set[str]] = {}  # (track root, target) -> test ids run
        self._lock = threading.Lock()

    def resolve(self, track: Track, selection: Selection) -> Resolved:
        if selection.full:
            return Resolved((), (), True)
        targets = [t for t in selection.targets if track.owns(t.path)]
        changed = [p for p in selection.changed if track.owns(p) and not track.is_test_file(p)]
        chosen = {t.path for t in targets}
        affected = track.affected_tests(self.worktree, changed) if changed else []
        if affected is None:  # the runner finds the related tests itself
            args = dict.fromkeys(t.runner_arg(track.language) for t in targets)
            return Resolved(tuple(args), tuple(changed), False)
        files = set(chosen) | set(affected)
        everything = set(self.test_files(track))
        if everything and everything <= files and not any(t.narrowed for t in targets):
            return Resolved((), (), True)  # the selection is the whole suite: run it as such
        args = [t.runner_arg(track.language) for t in targets]
        args += [f for f in affected if f not in chosen]
        return Resolved(tuple(dict.fromkeys(args)), (), False)

    def run(self, track: Track, selection: Selection, phase: str) -> TestReport | None:
        """The report for `selection` on the track's tree as it is now; None when the selection
        holds no test at all. A tree and selection already tested is not run again."""
        resolved = self.resolve(track, selection)
        if resolved.empty:
            return None
        key = (track.root, self.tree_of(track), resolved)
        with self._lock:
            earlier = self._results.get(key)
        if earlier is not None:
            self.emit(
                Notice(
                    message=f"{phase}{track.suffix}: same tree and tests as {earlier[0]}: "
                    f"result reused ({_scope(resolved)}), not run again"
                )
            )
            return earlier[1]
        report = track.run_tests(
            self.worktree,
            paths=resolved.paths,
            related=resolved.related,
            timeout_s=self.full_timeout_s if resolved.full else self.timeout_s,
            emit=self.emit,
        )
        mine = [t.with_path(track.local(t.path)) for t in selection.targets if track.owns(t.path)]
        report = narrow(report, mine)
        report = self._missing_as_errors(track, report, mine)
        self.emit(report.event(phase, scope=_scope(resolved)))
        with self._lock:
            self._results[key] = (phase, report)
        return report

    def _missing_as_errors(
        self, track: Track, report: TestReport, targets: list[TestTarget]
    ) -> TestReport:
        """A test of the given or new tests that ran before and has no result now is an error,
        never a silent pass: code or configuration that deselects the failing tests (an
        `addopts = --deselect ...` in pytest.ini, a filter in a runner's config) must not turn
        the run green. What ran is remembered per target; a timed-out run proves nothing."""
        if report.timed_out:
            return report
        broken = {c.file or c.id.split("::", 1)[0] for c in report.collection_errors}
        missing: list[TestCase] = []
        for target in targets:
            ran = {c.id for c in report.cases if target.matches(c.id)}
            with self._lock:
                seen = self._seen.setdefault((track.root, str(target)), set())
                gone = sorted(seen - ran) if target.path not in broken else []
                seen |= ran
            missing += [
                TestCase(
                    case_id,
                    "error",
                    "did not run, though it ran in an earlier run of this task: something "
                    "deselected or filtered it (the runner's configuration, a plugin); the "
                    "tests that matter must run and pass",
                    file=target.path,
                )
                for case_id in gone
            ]
        if not missing:
            return report
        return replace(report, cases=[*report.cases, *missing])


def _scope(resolved: Resolved) -> str:
    return "full" if resolved.full else "selected"


def narrow(report: TestReport, targets: list[TestTarget]) -> TestReport:
    """Keep only the named tests of files given with a test name or -k (the runner ran the
    whole file); results of other files are kept as they are."""
    narrowed = [t for t in targets if t.narrowed]
    if not narrowed:
        return report
    paths = {t.path for t in narrowed}
    whole = {t.path for t in targets if not t.narrowed}

    def kept(case_id: str, file: str) -> bool:
        path = file or case_id.split("::", 1)[0]
        if path not in paths or path in whole:
            return True
        return any(t.matches(case_id) for t in narrowed)

    cases = [c for c in report.cases if kept(c.id, c.file)]
    exit_code = report.exit_code
    if (
        exit_code not in (0, None)
        and not report.timed_out
        and not report.collection_errors
        and cases
        and all(c.outcome in ("passed", "skipped") for c in cases)
    ):
        exit_code = 0  # only tests outside the selection failed
    return replace(report, cases=cases, exit_code=exit_code)
