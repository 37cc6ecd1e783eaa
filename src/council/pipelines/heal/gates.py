"""A heal's gates: which run where and in what order, and running them in the sandbox."""

from __future__ import annotations

import dataclasses
import re
import shlex
from dataclasses import dataclass
from typing import Any

from council.config import CouncilConfig, GateConfig
from council.errors import CouncilError, UsageError
from council.events import FlakyDetected, Notice
from council.pipelines.models import cache_root
from council.pipelines.tracks import Track
from council.recovery import ErrorSignature, gate_run, signature
from council.sandbox import Limits, run
from council.toolchains.report import TestReport, first_line, normalise_message
from council.workspace.git import out as git_out
from council.workspace.tamper import guard_for

from .state import HealContext, HealState

LOG_LINES = 60
BUILTIN_GATES = ("install", "lint", "format", "typecheck", "test")
_STILL_RUNNING = "Still running at the time limit:"


@dataclass
class GateSlot:
    """One gate as it runs: on a language track (built-in gates), or at the repository's top
    (a gate with its own command in a repository of several tracks)."""

    gate: GateConfig
    track: Track | None
    group: int = 0

    @property
    def label(self) -> str:
        if self.track is None or self.track.solo:
            return self.gate.name
        return f"{self.track.language}:{self.gate.name}"

    def describe(self) -> dict[str, Any]:
        """What HealStarted records of the slot (the report's `gates`, the tracks' names)."""
        track = self.track
        return {
            "label": self.label,
            "group": self.group,
            "language": track.language if track else "",
            "root": track.root if track else "",
            **self.gate.model_dump(),
        }


@dataclass
class Failure:
    slot: GateSlot
    subject: Any
    sig: ErrorSignature

    def to_dict(self) -> dict[str, str]:
        track = self.slot.track
        return {
            **self.sig.to_dict(),
            "gate": self.slot.label,
            "track": track.language if track else "",
        }


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
    groups = [g for g in groups if g]
    for n, group in enumerate(groups):
        for slot in group:
            slot.group = n
    return groups


def trimmed_log(text: str, lines: int = LOG_LINES) -> str:
    """The last `lines` lines that say something (no blank lines, no pytest separator noise)."""
    kept = [
        line.rstrip()
        for line in text.splitlines()
        if line.strip() and not re.fullmatch(r"[=_\-\s]*", line)
    ]
    return "\n".join(kept[-lines:])


def failure_key(case: Any) -> tuple[str, str]:
    """One test's failure, without what differs between two runs of it."""
    return case.id, normalise_message(first_line(case.message or case.traceback))


def hangs(subject: Any) -> bool:
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


class GateRunner:
    """Runs the planned gates in the heal's worktree, with the limits the heal has raised."""

    def __init__(self, ctx: HealContext, groups: list[list[GateSlot]]) -> None:
        self.ctx = ctx
        self.groups = groups
        self.slots = [s for g in groups for s in g]
        self.results: dict[str, str] = {}  # gate label -> passed / failed / not run, last round

    def run_all(self) -> tuple[int, list[Failure]]:
        """Every group's gates; a group stops at its first failing required gate."""
        passed, failures = 0, []
        self.results = {s.label: "not run" for s in self.slots}
        for group in self.groups:
            for slot in group:
                ok, subject = self.run_gate(slot)
                ok = ok or self._only_known_flaky(slot, subject)
                self.results[slot.label] = "passed" if ok else "failed"
                if ok:
                    passed += 1
                    continue
                sig = signature(subject, gate=slot.gate.name, root=self.ctx.root(slot.track))
                failures.append(Failure(slot, subject, sig))
                if slot.gate.required:
                    break
        return passed, failures

    def _only_known_flaky(self, slot: GateSlot, subject: Any) -> bool:
        """A test run whose every failure a re-run already proved flaky in this heal: reported
        again, not a failure to fix (no re-run, no patch, no Builder call)."""
        if not isinstance(subject, TestReport) or subject.timed_out or subject.collection_errors:
            return False
        bad = subject.not_passing
        known = self.ctx.state.flaky_failures
        if not bad or not all(failure_key(c) in known for c in bad):
            return False
        tests = [c.id for c in bad]
        self.ctx.state.note_flaky(tests)
        self.ctx.emit(
            FlakyDetected(iteration=self.ctx.iteration, gate=slot.label, tests=tests, again=True)
        )
        return True

    def run_gate(self, slot: GateSlot) -> tuple[bool, Any]:
        ctx = self.ctx
        gate, track, where = slot.gate, slot.track, ctx.root(slot.track)
        timeout = ctx.state.timeouts[slot.label]
        memory_mb = ctx.state.memory_mb[slot.label]
        limits = Limits(cpu_s=ctx.config.sandbox.cpu_s, memory_mb=memory_mb)
        if gate.command:
            with guard_for(ctx.workdir).watch() as tampering:  # a gate may run the tests
                result = run(
                    shlex.split(gate.command),
                    where,
                    timeout_s=timeout,
                    limits=limits,
                    network=ctx.config.sandbox.network,
                    emit=ctx.emit,
                )
            if tampering.changes:
                ctx.emit(Notice(level="error", message=tampering.message))
                result.stderr += f"\n{tampering.message}\n"
            return result.ok and not tampering.changes, result
        assert track is not None
        if isinstance(getattr(track.toolchain, "limits", None), Limits):
            track.toolchain.limits = dataclasses.replace(
                track.toolchain.limits, memory_mb=memory_mb
            )
        if gate.name == "install" or track.env is None:
            try:
                track.prepare(ctx.workdir, cache_root() / "envs", ctx.emit)
            except CouncilError as exc:
                return False, gate_run(str(exc), "install")
            if gate.name == "install":
                return True, None
        if gate.name == "test":
            report = track.run_tests(ctx.workdir, timeout_s=timeout, emit=ctx.emit)
            return report.green, report
        name = "format_check" if gate.name == "format" else gate.name
        method = getattr(track.toolchain, name, None)
        if method is None:
            return True, None  # this language has no such gate
        files = [track.local(p) for p in self._files() if track.owns(p)]
        result = method(where, track.env, paths=files, emit=ctx.emit)
        return result.passed, result

    def _files(self) -> list[str]:
        workdir = self.ctx.workdir
        if not self.ctx.scratch:
            return git_out(workdir, "ls-files").splitlines()
        skip = {".git", ".council", ".venv", "node_modules", "__pycache__"}
        return [
            p.relative_to(workdir).as_posix()
            for p in workdir.rglob("*")
            if p.is_file() and not skip & set(p.relative_to(workdir).parts)
        ]


def first_state(config: CouncilConfig, groups: list[list[GateSlot]]) -> HealState:
    """A heal's state before its first iteration: each gate's time and memory limit."""
    test_limit = float(config.limits.test_timeout_s)
    slots = [s for g in groups for s in g]
    return HealState(
        timeouts={
            s.label: min(s.gate.timeout_s, test_limit if s.gate.name == "test" else 1e9)
            for s in slots
        },
        memory_mb={s.label: config.sandbox.memory_mb for s in slots},
    )


def heal_title(slots: list[GateSlot]) -> str:
    """The run's title in `council runs`: the gates it heals."""
    return "heal: " + ", ".join(s.label for s in slots)
