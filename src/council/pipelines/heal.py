"""`council heal`: run the quality gates of every language track, fix a failure, commit, repeat.

Per failure: the remembered fix for its signature first (no model call), then the known-error
catalogue's deterministic recovery where one is safe (declare a missing dependency, free a port
council started, retry with a longer time or memory limit, run the formatter), a re-run to tell
a flaky test from a broken one, and only then a Builder patch: checked deterministically,
reviewed by Guardian, applied with `git apply --check` first. Commands a model proposes pass the
command policy or stop the heal. Work happens on `council/heal-<timestamp>` next to a backup
branch; the run is recorded in the store like `council run`'s.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from council.config import CouncilConfig, GateConfig
from council.edits import EditPolicy, parse_edits
from council.errors import BudgetExceeded, CouncilError, ModelError, UsageError
from council.events import Emitter, Notice, RunFinished, RunStarted, StepFinished, StepStarted
from council.personas import Prompts, Review
from council.pipelines.models import ask_persona, cache_root, make_gateway
from council.pipelines.tracks import Track, discover_tracks
from council.recovery import (
    ErrorSignature,
    Fix,
    FixMemory,
    ProcessRegistry,
    Recovery,
    add_npm_dependency,
    add_python_dependency,
    classify,
    flaky_tests,
    gate_run,
    recover,
    signature,
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
from council.recovery.patch import apply_patch, diff_text
from council.recovery.proposed import first_forbidden, proposed_commands, run_allowed
from council.sandbox import Limits, run
from council.store import Store
from council.toolchains.report import TestReport, first_line, normalise_message
from council.workspace import Workspace, commit_all, create_worktree, file_sha256
from council.workspace.git import out as git_out
from council.workspace.tamper import guard_for

LOG_LINES = 60
MAX_FILES = 6
NO_PROGRESS_LIMIT = 3  # iterations in a row with the same failing signatures and no new gate
BUILTIN_GATES = ("install", "lint", "format", "typecheck", "test")
_FORBIDDEN_ADDED = (
    (re.compile(r"\bos\.system\s*\("), "adds os.system("),
    (re.compile(r"(?<![\w.])eval\s*\("), "adds eval("),
    (re.compile(r"(?<![\w.])exec\s*\("), "adds exec("),
    (re.compile(r"shell\s*=\s*True"), "adds subprocess with shell=True"),
    (re.compile(r"pytest\.mark\.skip"), "skips a test (@pytest.mark.skip)"),
)
_PATH_IN_LOG = re.compile(r"([\w./-]+\.(?:py|[cm]?[jt]sx?|java))\b")
# Failures worth one re-run of the same code before anyone edits anything: a flaky test fails
# an assertion (or fails some unknown way) and passes on the next run.
_RERUN_FIRST = {"failing_assertion"}
_DEPENDENCY = (Recovery.ADD_PYTHON_DEPENDENCY, Recovery.ADD_NPM_DEPENDENCY)


@dataclass
class HealOutcome:
    status: str  # green | failed | stopped | error | dry-run
    reason: str
    branch: str = ""
    backup_branch: str = ""
    commits: list[str] = field(default_factory=list)
    iterations: list[dict[str, Any]] = field(default_factory=list)
    report_path: str = ""
    cost_usd: float = 0.0
    run_id: str = ""
    flaky: list[str] = field(default_factory=list)
    tracks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 0 if self.status == "green" else 1


class _Stop(Exception):
    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass
class GateSlot:
    """One gate as it runs: on a language track (built-in gates), or at the repository's top
    (a gate with its own command in a repository of several tracks)."""

    gate: GateConfig
    track: Track | None

    @property
    def label(self) -> str:
        if self.track is None or self.track.solo:
            return self.gate.name
        return f"{self.track.language}:{self.gate.name}"


@dataclass
class Failure:
    slot: GateSlot
    subject: Any
    sig: ErrorSignature


def default_gates(track: Track) -> list[GateConfig]:
    """A track's gates when council.yaml names none (lint and typecheck pass when the project
    has no linter or no tsconfig.json)."""
    names = {
        "python": ("install", "lint", "test"),
        "javascript": ("install", "lint", "typecheck", "test"),
    }.get(track.language, ("install", "test"))
    return [GateConfig(name=n) for n in names]


def plan_gates(
    tracks: list[Track], configured: list[GateConfig], only: list[str] | None
) -> list[list[GateSlot]]:
    """Gate groups in the order they run; a group stops at its first failing required gate.

    One group per track (its built-in gates, from council.yaml or the language's defaults);
    gates with a command of their own join the track in a one-track repository, else they run
    once at the repository's top, as a group of their own.
    """
    for gate in configured:
        if not gate.command and gate.name not in BUILTIN_GATES:
            raise UsageError(
                f"gate {gate.name!r} needs a command in council.yaml "
                f"(built-in gates: {', '.join(BUILTIN_GATES)})"
            )
    solo = len(tracks) == 1
    groups: list[list[GateSlot]] = []
    for track in tracks:
        gates = [g for g in configured if not g.command or solo] or default_gates(track)
        groups.append([GateSlot(g, track) for g in gates])
    if not solo:
        top = [GateSlot(g, None) for g in configured if g.command]
        if top:
            groups.append(top)
    if only:
        known = {s.gate.name for grp in groups for s in grp} | {s.label for g in groups for s in g}
        unknown = set(only) - known
        if unknown:
            raise UsageError(f"--gates: unknown gate(s) {', '.join(sorted(unknown))}")
        groups = [[s for s in g if s.gate.name in only or s.label in only] for g in groups]
    return [g for g in groups if g]


def trimmed_log(text: str, lines: int = LOG_LINES) -> str:
    """The last `lines` lines that say something (no blank lines, no pytest separator noise)."""
    kept = [
        line.rstrip()
        for line in text.splitlines()
        if line.strip() and not re.fullmatch(r"[=_\-\s]*", line)
    ]
    return "\n".join(kept[-lines:])


def precheck(edits: list[Any], tracks: list[Track]) -> list[str]:
    """Deterministic reasons to refuse a patch before any review (empty: may go to review)."""
    reasons: list[str] = []
    for edit in edits:
        if any(t.is_test_file(edit.path) for t in tracks) or "/tests/" in f"/{edit.path}":
            reasons.append(f"{edit.path}: edits a test file (tests are read-only when healing)")
        removed, added = _lines_of(edit)
        if edit.is_delete:
            reasons.append(f"{edit.path}: deletes a file")
        for line in removed:
            if re.match(r"\s*(async\s+)?def\s+test", line):
                reasons.append(f"{edit.path}: deletes a test function ({line.strip()})")
        for line in added:
            for pattern, why in _FORBIDDEN_ADDED:
                if pattern.search(line):
                    reasons.append(f"{edit.path}: {why} ({line.strip()[:80]})")
    return list(dict.fromkeys(reasons))


def _failure_key(case: Any) -> tuple[str, str]:
    """One test's failure, without what differs between two runs of it."""
    return case.id, normalise_message(first_line(case.message or case.traceback))


_STILL_RUNNING = "Still running at the time limit:"


def _hangs(subject: Any) -> bool:
    """A test run killed at its limit whose runner dumped where it was (faulthandler, a JVM
    thread dump)."""
    return (
        isinstance(subject, TestReport)
        and subject.timed_out
        and (_STILL_RUNNING in subject.output_tail)
    )


def hang_location(report: TestReport) -> str:
    """The runner's "Still running at the time limit:" block: the project's frames."""
    block = report.output_tail.split(_STILL_RUNNING, 1)[1].split("\n\n", 1)[0]
    return f"The tests hang (killed at the time limit twice). {_STILL_RUNNING}{block}"


def _lines_of(edit: Any) -> tuple[list[str], list[str]]:
    if edit.kind == "udiff":
        removed = [ln[1:] for h in edit.hunks or [] for ln in h.lines if ln[:1] == "-"]
        added = [ln[1:] for h in edit.hunks or [] for ln in h.lines if ln[:1] == "+"]
        return removed, added
    if edit.kind == "search_replace":
        return (edit.search or "").splitlines(), (edit.replace or "").splitlines()
    return [], (edit.content or "").splitlines()


class HealPipeline:
    def __init__(
        self,
        *,
        repo: Path,
        config: CouncilConfig,
        store: Store | None,
        emit: Emitter,
        max_iterations: int = 10,
        dry_run: bool = False,
        only_gates: list[str] | None = None,
    ) -> None:
        self.repo = repo
        self.prompts = Prompts(repo)  # the repository's .council/prompts/ over the package's
        self.config = config
        self.store = store
        self.memory = FixMemory(store) if store is not None else None
        self.emit = emit
        self.max_iterations = max_iterations
        self.dry_run = dry_run
        self.tracks = discover_tracks(repo, config)
        self.groups = plan_gates(self.tracks, list(config.gates), only_gates)
        self.slots = [s for g in self.groups for s in g]
        test_limit = float(config.limits.test_timeout_s)
        self.timeouts = {
            s.label: min(s.gate.timeout_s, test_limit if s.gate.name == "test" else 1e9)
            for s in self.slots
        }
        self.memory_mb = {s.label: config.sandbox.memory_mb for s in self.slots}
        self.retried: dict[str, int] = {}
        self.rerun_done: set[str] = set()
        self.flaky: list[str] = []
        # Failures (test id, normalised message) a re-run proved flaky: flakiness belongs to
        # the test, so the same failure later in this heal is flaky too, never Builder's.
        self.flaky_failures: set[tuple[str, str]] = set()
        self.results: dict[str, str] = {}  # gate label -> passed / failed / not run, last round
        self.stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{time.time_ns() % 1_000_000:06d}"
        self.gateway = make_gateway(config, emit)
        self.registry = ProcessRegistry.for_repo(repo)
        self.ws: Workspace | None = None
        self.workdir: Path = repo
        self.run_id = ""
        self.commits: list[str] = []
        self.iterations: list[dict[str, Any]] = []
        self.pending: list[tuple[ErrorSignature, Fix, str]] = []  # fixes to remember once green

    # --- the loop ----------------------------------------------------------------------------

    def execute(self) -> HealOutcome:
        backup = ""
        scratch: tempfile.TemporaryDirectory | None = None
        if not self.dry_run and self.store is not None:
            self._start_run()
        try:
            if self.dry_run:
                scratch = tempfile.TemporaryDirectory(prefix="council-heal-dry-")
                self.workdir = Path(scratch.name) / "repo"
                shutil.copytree(
                    self.repo,
                    self.workdir,
                    ignore=shutil.ignore_patterns(".git", ".council", ".venv", "__pycache__"),
                )
                status, reason = self._dry()
            else:
                base = git_out(self.repo, "rev-parse", "HEAD")
                self.ws = create_worktree(self.repo, f"heal-{self.stamp}")
                backup = f"{self.ws.branch}-backup"
                git_out(self.repo, "branch", backup, base)
                self.workdir = self.ws.path
                guard_for(self.workdir).freeze(self._frozen())  # read-only in test runs
                if self.run_id:
                    self.emit(
                        RunStarted(
                            feature=self._title(),
                            repo=str(self.repo),
                            branch=self.ws.branch,
                            worktree=str(self.ws.path),
                        )
                    )
                status, reason = self._loop()
        except _Stop as stop:
            status, reason = stop.status, stop.reason
        except BudgetExceeded as exc:
            status, reason = "stopped", f"budget: {exc}"
        except (ModelError, CouncilError) as exc:
            status, reason = "error", str(exc)
        except BaseException as exc:
            # A bug of ours or ^C: the run record must not stay "running".
            stopped = isinstance(exc, KeyboardInterrupt)
            self._finish_run(
                HealOutcome(
                    status="stopped" if stopped else "error",
                    reason="interrupted" if stopped else f"internal error: {exc!r}",
                    commits=self.commits,
                    cost_usd=self.gateway.spent_usd,
                )
            )
            raise
        finally:
            if scratch is not None:
                scratch.cleanup()
        outcome = HealOutcome(
            status=status,
            reason=reason,
            branch=self.ws.branch if self.ws else "",
            backup_branch=backup,
            commits=self.commits,
            iterations=self.iterations,
            cost_usd=self.gateway.spent_usd,
            run_id=self.run_id,
            flaky=list(dict.fromkeys(self.flaky)),
            tracks=self._track_report(),
        )
        if not self.dry_run:
            outcome.report_path = str(self._write_report(outcome))
            self._finish_run(outcome)
        return outcome

    def _title(self) -> str:
        return "heal: " + ", ".join(s.label for s in self.slots)

    def _start_run(self) -> None:
        assert self.store is not None
        self.run_id = self.store.create_run(
            feature=self._title(),
            repo=str(self.repo),
            config={**self.config.snapshot(), "max_iterations": self.max_iterations},
            kind="heal",
        )
        self.emit.run_id = self.run_id
        self.emit.subscribe(self.store.record_event)

    def _finish_run(self, outcome: HealOutcome) -> None:
        if not self.run_id or self.store is None:
            return
        self.emit.step = None
        self.store.update_run(
            self.run_id,
            status=outcome.status,
            reason=outcome.reason,
            total_cost_usd=outcome.cost_usd,
            state={"report": outcome.report_path, "commits": outcome.commits},
        )
        self.emit(
            RunFinished(
                status=outcome.status, reason=outcome.reason, total_cost_usd=outcome.cost_usd
            )
        )

    def _dry(self) -> tuple[str, str]:
        _passed, failures = self._run_all()
        if not failures:
            self.iterations.append({"iteration": 1, "failures": [], "result": "green"})
            return "green", "all gates pass (dry run: nothing changed)"
        first = failures[0]
        entry: dict[str, Any] = {
            "iteration": 1,
            "gate": first.slot.label,
            "failures": [self._failure_dict(f) for f in failures],
        }
        root = self._root(first.slot)
        remembered = self.memory.lookup(first.sig) if self.memory else None
        matches = classify(first.subject, root=root)
        entry["classification"] = [m.id for m in matches]
        if remembered is not None:
            entry["recovery"] = {"kind": "memory", "fix": remembered.kind, "dry_run": True}
        elif matches and matches[0].row.safe_without_model:
            result = recover(
                matches[0],
                root,
                dry_run=True,
                gate=first.slot.label,
                timeout_s=self.timeouts[first.slot.label],
                memory_mb=self.memory_mb[first.slot.label],
                registry=self.registry,
                output=gate_run(first.subject).output,
            )
            entry["recovery"] = result.to_dict()
        else:
            entry["recovery"] = {"kind": Recovery.MODEL_PATCH.value, "dry_run": True}
        entry["result"] = "planned"
        self.iterations.append(entry)
        return "dry-run", f"{first.slot.label} fails: {first.sig.render()}"

    def _loop(self) -> tuple[str, str]:
        stale = 0
        last: tuple[frozenset[str], int] | None = None
        for i in range(1, self.max_iterations + 1):
            self.emit.step = f"heal-{i}"
            self.emit(StepStarted(detail=f"iteration {i}: run the gates"))
            passed, failures = self._run_all()
            self._settle_pending(failures)
            if not failures:
                self.iterations.append({"iteration": i, "failures": [], "result": "green"})
                self.emit(StepFinished(status="ok", detail="all gates pass"))
                fixes = len(self.commits)
                flaky = f"; flaky: {', '.join(self.flaky)}" if self.flaky else ""
                return "green", f"all gates pass after {fixes} fix(es){flaky}"
            now = (frozenset(f.sig.hash for f in failures), passed)
            same = last is not None and now[0] == last[0] and passed <= last[1]
            stale = stale + 1 if same else 0
            last = now
            first = failures[0]
            entry: dict[str, Any] = {
                "iteration": i,
                "gate": first.slot.label,
                "failures": [self._failure_dict(f) for f in failures],
                "log": trimmed_log(gate_run(first.subject).output, 20),
            }
            self.iterations.append(entry)
            if stale >= NO_PROGRESS_LIMIT - 1:
                entry["result"] = "no progress"
                self.emit(StepFinished(status="failed", detail="no progress"))
                raise _Stop(
                    "failed",
                    f"no progress in {NO_PROGRESS_LIMIT} iterations (same failures, no new gate "
                    f"passing): {'; '.join(f.sig.render() for f in failures)}",
                )
            spent = self.gateway.spent_usd
            try:
                entry["result"] = self._fix(first, entry)
            except _Stop as stop:
                entry.setdefault("result", f"gave up: {stop.reason}")
                raise
            finally:
                entry["cost_usd"] = round(self.gateway.spent_usd - spent, 6)
            self.emit(StepFinished(status="ok", detail=f"{first.slot.label}: {entry['result']}"))
        return "failed", f"not green after {self.max_iterations} iterations"

    def _failure_dict(self, failure: Failure) -> dict[str, Any]:
        track = failure.slot.track
        return {
            **failure.sig.to_dict(),
            "gate": failure.slot.label,
            "track": track.language if track else "",
        }

    def _settle_pending(self, failures: list[Failure]) -> None:
        """A fix is remembered once its gate no longer fails with the signature it fixed."""
        still = {(f.slot.label, f.sig.hash) for f in failures}
        for sig, fix, label in self.pending:
            if (label, sig.hash) not in still and self.memory is not None:
                self.memory.record(sig, fix)
        self.pending = []

    # --- gates -------------------------------------------------------------------------------

    def _run_all(self) -> tuple[int, list[Failure]]:
        """Every group's gates; a group stops at its first failing required gate."""
        passed, failures = 0, []
        self.results = {s.label: "not run" for s in self.slots}
        for group in self.groups:
            for slot in group:
                ok, subject = self._run_gate(slot)
                ok = ok or self._only_known_flaky(subject)
                self.results[slot.label] = "passed" if ok else "failed"
                if ok:
                    passed += 1
                    continue
                sig = signature(subject, gate=slot.gate.name, root=self._root(slot))
                failures.append(Failure(slot, subject, sig))
                if slot.gate.required:
                    break
        return passed, failures

    def _only_known_flaky(self, subject: Any) -> bool:
        """A test run whose every failure a re-run already proved flaky in this heal: reported
        again, not a failure to fix (no re-run, no patch, no Builder call)."""
        if not isinstance(subject, TestReport) or subject.timed_out or subject.collection_errors:
            return False
        bad = subject.not_passing
        if not bad or not all(_failure_key(c) in self.flaky_failures for c in bad):
            return False
        tests = [c.id for c in bad]
        self.flaky.extend(tests)
        self.emit(
            Notice(
                level="warning",
                message=f"flaky again: {', '.join(tests)} (proven flaky earlier in this heal; "
                "reported, not patched)",
            )
        )
        return True

    def _root(self, slot: GateSlot) -> Path:
        return slot.track.project_dir(self.workdir) if slot.track else self.workdir

    def _run_gate(self, slot: GateSlot) -> tuple[bool, Any]:
        gate, track, where = slot.gate, slot.track, self._root(slot)
        timeout = self.timeouts[slot.label]
        limits = Limits(cpu_s=self.config.sandbox.cpu_s, memory_mb=self.memory_mb[slot.label])
        if gate.command:
            with guard_for(self.workdir).watch() as tampering:  # a gate may run the tests
                result = run(
                    shlex.split(gate.command),
                    where,
                    timeout_s=timeout,
                    limits=limits,
                    network=self.config.sandbox.network,
                    emit=self.emit,
                )
            if tampering.changes:
                self.emit(Notice(level="error", message=tampering.message))
                result.stderr += f"\n{tampering.message}\n"
            return result.ok and not tampering.changes, result
        assert track is not None
        if isinstance(getattr(track.toolchain, "limits", None), Limits):
            track.toolchain.limits = dataclasses.replace(
                track.toolchain.limits, memory_mb=self.memory_mb[slot.label]
            )
        if gate.name == "install" or track.env is None:
            try:
                track.prepare(self.workdir, cache_root() / "envs", self.emit)
            except CouncilError as exc:
                return False, gate_run(str(exc), "install")
            if gate.name == "install":
                return True, None
        if gate.name == "test":
            report = track.run_tests(self.workdir, timeout_s=timeout, emit=self.emit)
            return report.green, report
        name = "format_check" if gate.name == "format" else gate.name
        method = getattr(track.toolchain, name, None)
        if method is None:
            return True, None  # this language has no such gate
        files = [track.local(p) for p in self._files() if track.owns(p)]
        result = method(where, track.env, paths=files, emit=self.emit)
        return result.passed, result

    def _files(self) -> list[str]:
        if self.ws is not None:
            return git_out(self.workdir, "ls-files").splitlines()
        skip = {".git", ".council", ".venv", "node_modules", "__pycache__"}
        return [
            p.relative_to(self.workdir).as_posix()
            for p in self.workdir.rglob("*")
            if p.is_file() and not skip & set(p.relative_to(self.workdir).parts)
        ]

    # --- fixes -------------------------------------------------------------------------------

    def _fix(self, failure: Failure, entry: dict[str, Any]) -> str:
        slot, subject, sig = failure.slot, failure.subject, failure.sig
        root = self._root(slot)
        remembered = self.memory.lookup(sig) if self.memory else None
        if remembered is not None:
            entry["recovery"] = {"kind": "memory", "fix": remembered.kind}
            if self._apply_remembered(remembered, root):
                fix = Fix(remembered.kind, dict(remembered.payload))
                self._commit(slot, sig, f"remembered {remembered.kind}", fix)
                return "applied remembered fix"
            if self.memory is not None:
                self.memory.failed(sig, remembered)
        matches = classify(subject, root=root)
        entry["classification"] = [m.id for m in matches]
        match = matches[0] if matches else None
        if match is not None and match.row.safe_without_model:
            done = self._deterministic(failure, match, entry, root)
            if done is not None:
                return done
        if match is not None and match.recovery is Recovery.REPORT:
            hint = f" {match.row.hint}" if match.row.hint else ""
            entry["recovery"] = {"kind": Recovery.REPORT.value, "evidence": match.evidence}
            raise _Stop(
                "failed",
                f"{slot.label}: {match.row.description} ({match.evidence}): "
                f"needs a person, not a patch.{hint}",
            )
        if self._flaky(failure, match, entry):
            return "flaky: passed on a re-run of the same code; nothing edited"
        return self._model_patch(failure, entry, match)

    def _deterministic(
        self, failure: Failure, match: Any, entry: dict[str, Any], root: Path
    ) -> str | None:
        """The catalogue's recovery without a model; None when it does not apply here."""
        slot, label = failure.slot, failure.slot.label
        kind = match.recovery
        if kind in (Recovery.RERUN, Recovery.RETRY_BACKOFF):
            return None  # a re-run decides (see _flaky)
        key = f"{kind.value}:{label}"
        attempts = self.retried.get(key, 0)
        result = recover(
            match,
            root,
            gate=label,
            timeout_s=self.timeouts[label],
            memory_mb=self.memory_mb[label],
            attempts=attempts,
            registry=self.registry,
            output=gate_run(failure.subject).output,
        )
        entry["recovery"] = result.to_dict()
        if kind in (Recovery.RETRY_LONGER, Recovery.RETRY_MORE_MEMORY, Recovery.FREE_PORT):
            if not result.applied and kind is Recovery.RETRY_LONGER and _hangs(failure.subject):
                # Timed out again with the longer limit, and the runner said where it was
                # stuck: an infinite loop is a bug like any other, Builder gets it.
                entry["hang"] = hang_location(failure.subject)
                return None
            if not result.applied:
                why = result.description
                raise _Stop("failed", why if why.startswith(label) else f"{label}: {why}")
            self.retried[key] = attempts + 1
            if kind is Recovery.RETRY_LONGER:
                self.timeouts[label] = float(result.facts["timeout_s"])
            elif kind is Recovery.RETRY_MORE_MEMORY:
                self.memory_mb[label] = int(result.facts["memory_mb"])
            return result.description + "; re-run"
        if result.applied or result.needs_prepare:
            if slot.track is not None and kind is not Recovery.RUN_FORMATTER:
                slot.track.env = None  # the next run builds the env again
            if result.applied:
                if kind in _DEPENDENCY and slot.track is not None:
                    self._install_and_pin(slot, result, entry, root)
                self._commit(slot, failure.sig, kind.value, Fix.action(kind.value, **result.facts))
            return result.description
        return None

    def _install_and_pin(
        self, slot: GateSlot, added: ActionResult, entry: dict[str, Any], root: Path
    ) -> None:
        """Install a dependency just declared; pin it to a compatible range of the version that
        was installed, or, when it does not install, take the declaration back and stop."""
        track = slot.track
        assert track is not None
        try:
            track.prepare(self.workdir, cache_root() / "envs", self.emit)
        except CouncilError as exc:
            undo(root, added)
            track.env = None
            entry["recovery"]["reverted"] = True
            why = first_line(str(exc)) or "the install failed"
            raise _Stop(
                "failed",
                f"{slot.label}: {added.description}, but installing it failed ({why}); the "
                "edit was reverted",
            ) from None
        name = added.facts.get("distribution") or added.facts.get("package", "")
        version = installed_version(track.env, name)
        if version is None:
            return
        if "distribution" in added.facts:
            pinned = pin_python_dependency(root, name, version)
        else:
            pinned = pin_npm_dependency(root, name, version)
        if pinned.applied:
            track.env = None  # the declaration changed again: the next run prepares it
            rng = pinned.facts.get("requirement") or f"{name}@{pinned.facts['range']}"
            added.facts["requirement"] = rng
            added.description += f"; pinned to {rng} (installed {version})"
            entry["recovery"] = {**entry["recovery"], "pinned": rng, "installed": version}
            entry["recovery"]["description"] = added.description

    def _flaky(self, failure: Failure, match: Any, entry: dict[str, Any]) -> bool:
        """Re-run a failed gate once, unchanged: a failure that goes away was flaky."""
        worth = match is None or match.id in _RERUN_FIRST or match.row.retriable
        if match is not None and match.recovery is Recovery.RETRY_LONGER:
            worth = False  # it already ran twice, the second time with a longer limit
        if not worth or failure.sig.hash in self.rerun_done:
            return False
        self.rerun_done.add(failure.sig.hash)
        ok, again = self._run_gate(failure.slot)
        if not ok:
            entry["rerun"] = "failed again: not flaky"
            return False
        tests = (
            flaky_tests(failure.subject, again)
            if isinstance(failure.subject, TestReport) and isinstance(again, TestReport)
            else []
        ) or [failure.slot.label]
        if isinstance(failure.subject, TestReport):
            flipped = set(tests)
            self.flaky_failures |= {
                _failure_key(c) for c in failure.subject.not_passing if c.id in flipped
            }
        self.flaky.extend(tests)
        entry["recovery"] = {"kind": Recovery.RERUN.value, "flaky": tests, "edited": False}
        self.emit(Notice(level="warning", message=f"flaky: {', '.join(tests)} passed on a re-run"))
        return True

    def _apply_remembered(self, record: Any, root: Path) -> bool:
        if record.kind == PATCH:
            return self._apply_answer(record.payload.get("diff", ""))[0]
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
            return run_formatter(root, emit=self.emit).applied
        else:
            return False
        for track in self.tracks:
            track.env = None
        return result.applied

    def _apply_answer(self, answer: str) -> tuple[bool, list[str], str]:
        """Pre-check and apply the diff in a model answer: (applied, reasons refused, method)."""
        diff = diff_text(answer)
        edits = [e for e in parse_edits(f"```diff\n{diff}```\n") if e.kind == "udiff"]
        reasons = precheck(edits, self.tracks) if diff else ["no unified diff in the answer"]
        if reasons:
            return False, reasons, ""
        result = apply_patch(self.workdir, diff, EditPolicy(frozen=self._frozen()))
        return result.applied, result.reasons, result.method

    def _model_patch(self, failure: Failure, entry: dict[str, Any], match: Any) -> str:
        slot, sig = failure.slot, failure.sig
        log = trimmed_log(gate_run(failure.subject).output)
        if _hangs(failure.subject):
            # The tail of a killed run is noise; where it was stuck goes first, whole.
            log = f"{hang_location(failure.subject)}\n\n{trimmed_log(log, LOG_LINES // 2)}"
        facts = {
            "gate": slot.label,
            "signature": sig.render(),
            "classification": match.row.description if match else "",
            "log": log,
            "files": self._relevant_files(log, sig.file, self._root(slot)),
        }
        messages = self.prompts.render("builder", "heal_patch", feedback="", **facts)
        record: dict[str, Any] = {"kind": Recovery.MODEL_PATCH.value, "attempts": []}
        entry["recovery"] = record
        deny = self.config.policy.deny
        reasons: list[str] = []
        for attempt in range(2):
            answer = self._call("builder", messages)
            commands = proposed_commands(answer)
            forbidden = first_forbidden(commands, deny)
            if forbidden is not None:
                entry["result"] = "forbidden command"
                record["forbidden"] = {
                    "command": forbidden.command,
                    "rule": forbidden.decision.rule,
                    "reason": forbidden.decision.reason,
                }
                raise _Stop(
                    "stopped", f"Builder proposed a forbidden command: {forbidden.render()}"
                )
            diff = diff_text(answer)
            edits = [e for e in parse_edits(f"```diff\n{diff}```\n") if e.kind == "udiff"]
            if diff:
                reasons = precheck(edits, self.tracks)
            else:
                reasons = [] if commands else ["no unified diff in the answer"]
            verdict = "precheck"
            if not reasons:
                asked = self.prompts.render("guardian", "heal_review", diff=answer, **facts)
                review: Review = self._call("guardian", asked, Review)
                verdict = review.verdict
                if review.verdict != "approve" or review.high:
                    reasons = [
                        f"[{c.severity}] {c.file} {c.message}".strip() for c in review.comments
                    ] or [review.summary]
            tried: dict[str, Any] = {"verdict": verdict, "diff": diff, "commands": commands}
            record["attempts"].append(tried)
            if not reasons:
                applied, reasons, method = (
                    self._apply_answer(answer) if diff else (True, [], "commands only")
                )
                tried["applied_with"] = method
            tried["reasons"] = reasons
            if not reasons:
                if commands:
                    record["commands"] = run_allowed(
                        commands,
                        self._root(slot),
                        deny=deny,
                        limits=Limits(memory_mb=self.config.sandbox.memory_mb),
                        network=self.config.sandbox.network,
                        emit=self.emit,
                    )
                    if slot.track is not None:
                        slot.track.env = None
                self._commit(slot, sig, Recovery.MODEL_PATCH.value, Fix.patch(answer))
                return f"patch applied ({method})"
            self.emit(Notice(level="warning", message=f"patch refused: {reasons[0]}"))
            if attempt == 0:
                messages = [
                    *messages,
                    {"role": "assistant", "content": answer},
                    {
                        "role": "user",
                        "content": self.prompts.text("feedback_patch_refused", reasons=reasons),
                    },
                ]
        raise _Stop("failed", f"patch for {slot.label} refused twice: {reasons[0]}")

    def _call(self, persona: str, messages: list[dict[str, str]], schema: type | None = None):
        return ask_persona(self.gateway, self.config, persona, messages, schema)

    def _relevant_files(self, log: str, first: str, root: Path) -> dict[str, str]:
        out: dict[str, str] = {}
        top = self.workdir.resolve()
        for rel in [first, *_PATH_IN_LOG.findall(log)]:
            if not rel or len(out) >= MAX_FILES:
                continue
            path = self.workdir / rel
            if not path.is_file():
                path = root / rel
            try:
                inside = path.resolve().is_relative_to(top)
            except OSError:
                inside = False
            if inside and path.is_file():
                key = path.resolve().relative_to(top).as_posix()
                out.setdefault(key, path.read_text(encoding="utf-8", errors="replace")[:20_000])
        return out

    def _frozen(self) -> dict[str, str]:
        files = git_out(self.workdir, "ls-files").splitlines()
        return {
            p: file_sha256(self.workdir / p)
            for p in files
            if any(t.is_test_file(p) for t in self.tracks) and (self.workdir / p).is_file()
        }

    def _commit(self, slot: GateSlot, sig: ErrorSignature, kind: str, fix: Fix) -> None:
        assert self.ws is not None
        changed = guard_for(self.workdir).verify()
        if changed:
            raise _Stop(
                "failed", f"frozen test files changed before the commit: {', '.join(changed)}"
            )
        message = (
            f"fix(heal): {slot.label}: {sig.error_type} [{sig.hash}]\n\n"
            f"Signature: {sig.render()}\nRecovery: {kind}\n"
        )
        sha = commit_all(self.ws, message, emit=self.emit)
        if sha:
            self.commits.append(sha)
        self.pending.append((sig, fix, slot.label))

    # --- report ------------------------------------------------------------------------------

    def _track_report(self) -> list[dict[str, Any]]:
        out = []
        for group in self.groups:
            track = group[0].track
            gates = {s.gate.name: self.results.get(s.label, "not run") for s in group}
            out.append(
                {
                    "language": track.language if track else "",
                    "root": track.root if track else "",
                    "gates": gates,
                    "status": "green" if all(v == "passed" for v in gates.values()) else "failed",
                }
            )
        return out

    def _write_report(self, outcome: HealOutcome) -> Path:
        folder = self.repo / ".council" / "reports"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"heal-{self.stamp}.json"
        doc = {
            "run_id": outcome.run_id,
            "status": outcome.status,
            "reason": outcome.reason,
            "branch": outcome.branch,
            "backup_branch": outcome.backup_branch,
            "commits": outcome.commits,
            "gates": [{"label": s.label, **s.gate.model_dump()} for s in self.slots],
            "tracks": outcome.tracks,
            "flaky": outcome.flaky,
            "iterations": outcome.iterations,
            "cost_usd": outcome.cost_usd,
        }
        path.write_text(json.dumps(doc, indent=2, default=str), encoding="utf-8")
        return path
