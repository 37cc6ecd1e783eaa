"""What a heal carries from one iteration to the next, and the parts its modules share.

HealState is an iteration step's stored output: `council resume` of a heal reloads it from the
last finished iteration (limits raised so far, re-runs done, failures proven flaky, fixes that
wait for a green gate to be remembered, the no-progress count, and the commit to go back to).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from council.config import CouncilConfig
from council.events import Emitter
from council.personas import Prompts
from council.pipelines.lifecycle import Stop
from council.pipelines.tracks import Track
from council.recovery import ErrorSignature, Fix, FixMemory, ProcessRegistry
from council.workspace import file_sha256
from council.workspace.git import out as git_out
from council.workspace.tamper import guard_for


@dataclass
class HealState:
    timeouts: dict[str, float] = field(default_factory=dict)  # gate label -> seconds
    memory_mb: dict[str, int] = field(default_factory=dict)  # gate label -> memory limit
    retried: dict[str, int] = field(default_factory=dict)  # "<recovery>:<label>" -> times
    rerun_done: set[str] = field(default_factory=set)  # signature hashes re-run once already
    # Failures (test id, normalised message) a re-run proved flaky: flakiness belongs to the
    # test, so the same failure later in this heal is flaky too, never Builder's.
    flaky_failures: set[tuple[str, str]] = field(default_factory=set)
    flaky: list[str] = field(default_factory=list)  # test ids, in the order found
    commits: list[str] = field(default_factory=list)
    pending: list[dict[str, Any]] = field(default_factory=list)  # fixes to remember once green
    stale: int = 0  # iterations in a row with the same failures and no new gate passing
    last: tuple[list[str], int] | None = None  # (failing signature hashes, gates passed)
    head: str = ""  # the worktree's commit when the iteration finished

    def note_flaky(self, tests: list[str]) -> None:
        self.flaky.extend(t for t in tests if t not in self.flaky)

    def to_dict(self) -> dict[str, Any]:
        return {
            "timeouts": self.timeouts,
            "memory_mb": self.memory_mb,
            "retried": self.retried,
            "rerun_done": sorted(self.rerun_done),
            "flaky_failures": sorted(list(k) for k in self.flaky_failures),
            "flaky": self.flaky,
            "commits": self.commits,
            "pending": self.pending,
            "stale": self.stale,
            "last": list(self.last) if self.last else None,
            "head": self.head,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HealState:
        last = data.get("last")
        return cls(
            timeouts={k: float(v) for k, v in data.get("timeouts", {}).items()},
            memory_mb={k: int(v) for k, v in data.get("memory_mb", {}).items()},
            retried=dict(data.get("retried", {})),
            rerun_done=set(data.get("rerun_done", [])),
            flaky_failures={(a, b) for a, b in data.get("flaky_failures", [])},
            flaky=list(data.get("flaky", [])),
            commits=list(data.get("commits", [])),
            pending=list(data.get("pending", [])),
            stale=int(data.get("stale", 0)),
            last=(list(last[0]), int(last[1])) if last else None,
            head=str(data.get("head", "")),
        )


@dataclass
class HealContext:
    """The parts of one heal its gates, recoveries and patches all use. `ask` and `save` are
    the run's (its lifecycle's persona call and commit); a dry run has neither."""

    repo: Path
    config: CouncilConfig
    emit: Emitter
    tracks: list[Track]
    memory: FixMemory | None
    registry: ProcessRegistry
    prompts: Prompts
    ask: Callable[..., Any] | None = None  # (persona, messages, schema) -> answer
    save: Callable[[str], str] | None = None  # commit everything: message -> sha ("" if none)
    state: HealState = field(default_factory=HealState)
    workdir: Path = Path()
    scratch: bool = False  # a dry run's copy: no git
    iteration: int = 0

    def root(self, track: Track | None) -> Path:
        return track.project_dir(self.workdir) if track else self.workdir

    def call(self, persona: str, messages: list[dict[str, str]], schema: type | None = None):
        assert self.ask is not None, "a dry run asks no model"
        return self.ask(persona, messages, schema)

    def frozen(self) -> dict[str, str]:
        """The test files (read-only while healing) and their hashes."""
        files = git_out(self.workdir, "ls-files").splitlines()
        return {
            p: file_sha256(self.workdir / p)
            for p in files
            if any(t.is_test_file(p) for t in self.tracks) and (self.workdir / p).is_file()
        }

    def commit(self, label: str, sig: ErrorSignature, kind: str, fix: Fix) -> None:
        """Commit the fix (the frozen tests checked unchanged first); remember it once green."""
        assert self.save is not None, "a dry run commits nothing"
        changed = guard_for(self.workdir).verify()
        if changed:
            raise Stop(
                "failed", f"frozen test files changed before the commit: {', '.join(changed)}"
            )
        message = (
            f"fix(heal): {label}: {sig.error_type} [{sig.hash}]\n\n"
            f"Signature: {sig.render()}\nRecovery: {kind}\n"
        )
        sha = self.save(message)
        if sha:
            self.state.commits.append(sha)
        self.state.pending.append(
            {"signature": sig.to_dict(), "kind": fix.kind, "payload": fix.payload, "gate": label}
        )

    def settle_pending(self, still: set[tuple[str, str]]) -> None:
        """A fix is remembered once its gate no longer fails with the signature it fixed."""
        for item in self.state.pending:
            sig = item["signature"]
            if (item["gate"], sig["hash"]) not in still and self.memory is not None:
                known = ErrorSignature(sig["tool"], sig["error_type"], sig["file"], sig["message"])
                self.memory.record(known, Fix(item["kind"], dict(item["payload"])))
        self.state.pending = []
