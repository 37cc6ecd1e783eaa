"""The final gate: lint, format, typecheck and SAST on the change, the full suite once, and
which failures are the change's (not the base commit's)."""

from __future__ import annotations

from typing import Any

from council.events import Notice
from council.pipelines.lifecycle import Stop
from council.pipelines.run.base import RunBase, counts
from council.pipelines.testruns import Selection
from council.pipelines.tracks import Track
from council.toolchains import TestReport
from council.toolchains.gates import preexisting_note
from council.toolchains.test_ids import TestTarget
from council.workspace import snapshot_tree
from council.workspace.changes import change_scope
from council.workspace.git import out as git_out


class GateSteps(RunBase):
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
                f"{label}{counts(report)}{': ' + ids if ids else ''}"
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
