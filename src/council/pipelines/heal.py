"""`council heal`: run the quality gates, fix the first failure, commit, repeat until green.

Per failure: the remembered fix for its signature first (no model call), then a deterministic
recovery from the catalogue where safe, else a Builder patch reviewed by Guardian (after a
deterministic pre-check). Work happens on `council/heal-<timestamp>` next to a backup branch.
"""

from __future__ import annotations

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
from council.edits import EditPolicy, apply_edits, parse_edits
from council.errors import BudgetExceeded, CouncilError, ModelError, UsageError
from council.events import Emitter, Notice
from council.personas import Review, render
from council.pipelines.models import ask_persona, cache_root, make_gateway
from council.pipelines.tracks import Track, discover_tracks
from council.recovery import (
    Fix,
    FixMemory,
    Recovery,
    add_python_dependency,
    check,
    classify,
    gate_run,
    recover,
    signature,
)
from council.recovery.memory import PATCH
from council.store import Store
from council.workspace import Workspace, commit_all, create_worktree, file_sha256
from council.workspace.git import out as git_out

LOG_LINES = 60
MAX_FILES = 6
NO_PROGRESS_LIMIT = 3
_FORBIDDEN_ADDED = (
    (re.compile(r"\bos\.system\s*\("), "adds os.system("),
    (re.compile(r"(?<![\w.])eval\s*\("), "adds eval("),
    (re.compile(r"(?<![\w.])exec\s*\("), "adds exec("),
    (re.compile(r"shell\s*=\s*True"), "adds subprocess with shell=True"),
    (re.compile(r"pytest\.mark\.skip"), "skips a test (@pytest.mark.skip)"),
)
_SHELL_LANGS = {"bash", "sh", "shell", "console", "zsh"}
_PATH_IN_LOG = re.compile(r"([\w./-]+\.py)\b")


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

    @property
    def exit_code(self) -> int:
        return 0 if self.status == "green" else 1


class _Stop(Exception):
    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def default_gates(track: Track) -> list[GateConfig]:
    if track.language == "python":
        return [GateConfig(name="install"), GateConfig(name="lint"), GateConfig(name="test")]
    return [GateConfig(name="install"), GateConfig(name="test")]


def trimmed_log(text: str, lines: int = LOG_LINES) -> str:
    """The last `lines` lines that say something (no blank lines, no pytest separator noise)."""
    kept = [
        line.rstrip()
        for line in text.splitlines()
        if line.strip() and not re.fullmatch(r"[=_\-\s]*", line)
    ]
    return "\n".join(kept[-lines:])


def precheck(edits: list[Any], track: Track) -> list[str]:
    """Deterministic reasons to refuse a patch before any review (empty: may go to review)."""
    reasons: list[str] = []
    for edit in edits:
        if track.is_test_file(edit.path) or "/tests/" in f"/{edit.path}":
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


def _lines_of(edit: Any) -> tuple[list[str], list[str]]:
    if edit.kind == "udiff":
        removed = [ln[1:] for h in edit.hunks or [] for ln in h.lines if ln[:1] == "-"]
        added = [ln[1:] for h in edit.hunks or [] for ln in h.lines if ln[:1] == "+"]
        return removed, added
    if edit.kind == "search_replace":
        return (edit.search or "").splitlines(), (edit.replace or "").splitlines()
    return [], (edit.content or "").splitlines()


def proposed_commands(answer: str) -> list[str]:
    """Shell lines a model put in ```bash / ```sh blocks."""
    out, lang = [], None
    for line in answer.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            lang = None if lang is not None else (stripped[3:].strip().lower() or "")
            continue
        if lang in _SHELL_LANGS and stripped and not stripped.startswith("#"):
            out.append(stripped.removeprefix("$ "))
    return out


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
        self.config = config
        self.store = store
        self.memory = FixMemory(store) if store is not None else None
        self.emit = emit
        self.max_iterations = max_iterations
        self.dry_run = dry_run
        tracks = discover_tracks(repo, config)
        self.track = tracks[0]
        gates = list(config.gates) or default_gates(self.track)
        if only_gates:
            unknown = set(only_gates) - {g.name for g in gates}
            if unknown:
                raise UsageError(f"--gates: unknown gate(s) {', '.join(sorted(unknown))}")
            gates = [g for g in gates if g.name in only_gates]
        for g in gates:
            if not g.command and g.name not in ("install", "lint", "test"):
                raise UsageError(f"gate {g.name!r} needs a command in council.yaml")
        self.gates = gates
        self.timeouts = {g.name: g.timeout_s for g in gates}
        self.timeouts["test"] = min(
            self.timeouts.get("test", 300), float(config.limits.test_timeout_s)
        )
        self.retried: dict[str, int] = {}
        self.stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{time.time_ns() % 1_000_000:06d}"
        self.gateway = make_gateway(config, emit)
        self.ws: Workspace | None = None
        self.workdir: Path = repo
        self.commits: list[str] = []
        self.iterations: list[dict[str, Any]] = []
        self.pending: tuple[Any, Fix, str] | None = None  # (signature, fix, gate) to remember

    # --- the loop ----------------------------------------------------------------------------

    def execute(self) -> HealOutcome:
        backup = ""
        scratch: tempfile.TemporaryDirectory | None = None
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
                status, reason = self._loop()
        except _Stop as stop:
            status, reason = stop.status, stop.reason
        except BudgetExceeded as exc:
            status, reason = "stopped", f"budget: {exc}"
        except (ModelError, CouncilError) as exc:
            status, reason = "error", str(exc)
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
        )
        if not self.dry_run:
            outcome.report_path = str(self._write_report(outcome))
        return outcome

    def _dry(self) -> tuple[str, str]:
        failure = self._first_failure()
        if failure is None:
            self.iterations.append({"iteration": 1, "failures": [], "result": "green"})
            return "green", "all gates pass (dry run: nothing changed)"
        gate, subject = failure
        sig = signature(subject, gate=gate.name, root=self.workdir)
        entry: dict[str, Any] = {"iteration": 1, "gate": gate.name, "failures": [sig.to_dict()]}
        remembered = self.memory.lookup(sig) if self.memory else None
        matches = classify(subject, root=self.track.project_dir(self.workdir))
        entry["classification"] = [m.id for m in matches]
        if remembered is not None:
            entry["recovery"] = {"kind": "memory", "fix": remembered.kind, "dry_run": True}
        elif matches and matches[0].row.safe_without_model:
            result = recover(
                matches[0],
                self.track.project_dir(self.workdir),
                dry_run=True,
                gate=gate.name,
                timeout_s=self.timeouts.get(gate.name, 300),
            )
            entry["recovery"] = result.to_dict()
        else:
            entry["recovery"] = {"kind": Recovery.MODEL_PATCH.value, "dry_run": True}
        entry["result"] = "planned"
        self.iterations.append(entry)
        return "dry-run", f"{gate.name} fails: {sig.render()}"

    def _loop(self) -> tuple[str, str]:
        stale = 0
        last: tuple[frozenset[str], int] | None = None
        for i in range(1, self.max_iterations + 1):
            passed, failure = self._run_gates()
            if self.pending is not None:
                sig, fix, gate_name = self.pending
                ok = (
                    failure is None
                    or failure[0].name != gate_name
                    or (signature(failure[1], gate=gate_name, root=self.workdir).hash != sig.hash)
                )
                if ok and self.memory is not None:
                    self.memory.record(sig, fix)
                self.pending = None
            if failure is None:
                self.iterations.append({"iteration": i, "failures": [], "result": "green"})
                return "green", f"all gates pass after {i - 1} fix(es)"
            gate, subject = failure
            sig = signature(subject, gate=gate.name, root=self.workdir)
            now = (frozenset({sig.hash}), passed)
            stale = stale + 1 if last is not None and now[0] == last[0] and passed <= last[1] else 0
            last = now
            entry: dict[str, Any] = {
                "iteration": i,
                "gate": gate.name,
                "failures": [sig.to_dict()],
                "log": trimmed_log(gate_run(subject).output, 20),
            }
            self.iterations.append(entry)
            if stale >= NO_PROGRESS_LIMIT - 1:
                entry["result"] = "no progress"
                raise _Stop(
                    "failed", f"no progress in {NO_PROGRESS_LIMIT} iterations: {sig.render()}"
                )
            spent = self.gateway.spent_usd
            entry["result"] = self._fix(gate, subject, sig, entry)
            entry["cost_usd"] = round(self.gateway.spent_usd - spent, 6)
        return "failed", f"not green after {self.max_iterations} iterations"

    # --- gates -------------------------------------------------------------------------------

    def _run_gates(self) -> tuple[int, tuple[GateConfig, Any] | None]:
        passed = 0
        for gate in self.gates:
            ok, subject = self._run_gate(gate)
            if ok:
                passed += 1
            elif gate.required:
                return passed, (gate, subject)
        return passed, None

    def _first_failure(self) -> tuple[GateConfig, Any] | None:
        return self._run_gates()[1]

    def _run_gate(self, gate: GateConfig) -> tuple[bool, Any]:
        where = self.track.project_dir(self.workdir)
        timeout = self.timeouts.get(gate.name, gate.timeout_s)
        if gate.command:
            from council.sandbox import run

            result = run(shlex.split(gate.command), where, timeout_s=timeout, emit=self.emit)
            return (result.exit_code == 0 and not result.timed_out), result
        if gate.name == "install":
            try:
                self.track.prepare(self.workdir, cache_root() / "envs", self.emit)
            except CouncilError as exc:
                return False, gate_run(str(exc), "install")
            return True, None
        if self.track.env is None:
            self.track.prepare(self.workdir, cache_root() / "envs", self.emit)
        if gate.name == "lint":
            files = git_out(self.workdir, "ls-files", "*.py").splitlines() if self.ws else []
            if not files:
                files = [p.relative_to(where).as_posix() for p in where.rglob("*.py")]
            result = self.track.toolchain.lint(where, self.track.env, paths=files, emit=self.emit)
            return result.passed, result
        report = self.track.run_tests(self.workdir, timeout_s=timeout, emit=self.emit)
        return report.green, report

    # --- fixes -------------------------------------------------------------------------------

    def _fix(self, gate: GateConfig, subject: Any, sig: Any, entry: dict[str, Any]) -> str:
        root = self.track.project_dir(self.workdir)
        remembered = self.memory.lookup(sig) if self.memory else None
        if remembered is not None:
            entry["recovery"] = {"kind": "memory", "fix": remembered.kind}
            if self._apply_remembered(remembered):
                fix = Fix(remembered.kind, dict(remembered.payload))
                self._commit(gate, sig, f"remembered {remembered.kind}", fix)
                return "applied remembered fix"
            if self.memory is not None:
                self.memory.failed(sig, remembered)
        matches = classify(subject, root=root)
        entry["classification"] = [m.id for m in matches]
        match = matches[0] if matches else None
        if (
            match is not None
            and match.row.safe_without_model
            and match.recovery
            in (
                Recovery.ADD_PYTHON_DEPENDENCY,
                Recovery.RETRY_LONGER,
            )
        ):
            attempts = self.retried.get(gate.name, 0)
            result = recover(
                match,
                root,
                gate=gate.name,
                timeout_s=self.timeouts.get(gate.name, gate.timeout_s),
                attempts=attempts,
            )
            entry["recovery"] = result.to_dict()
            if match.recovery is Recovery.RETRY_LONGER:
                if not result.applied:
                    raise _Stop("failed", result.description)
                self.retried[gate.name] = attempts + 1
                self.timeouts[gate.name] = float(result.facts["timeout_s"])
                return "retry with a longer limit"
            if result.applied or result.needs_prepare:
                self.track.env = None  # the next install gate builds the env again
                if result.applied:
                    fix = Fix.action(match.recovery.value, **result.facts)
                    self._commit(gate, sig, match.recovery.value, fix)
                return result.description
        return self._model_patch(gate, subject, sig, entry, match)

    def _apply_remembered(self, record: Any) -> bool:
        if record.kind == PATCH:
            edits = parse_edits(record.payload.get("diff", ""))
            if not edits or precheck(edits, self.track):
                return False
            result = apply_edits(self.workdir, edits, EditPolicy(frozen=self._frozen()))
            return bool(result.applied) and result.ok
        if record.kind == Recovery.ADD_PYTHON_DEPENDENCY.value:
            dist = record.payload.get("distribution", "")
            result = add_python_dependency(self.track.project_dir(self.workdir), dist)
            self.track.env = None
            return result.applied
        return False

    def _model_patch(
        self, gate: GateConfig, subject: Any, sig: Any, entry: dict[str, Any], match: Any
    ) -> str:
        log = trimmed_log(gate_run(subject).output)
        facts = {
            "gate": gate.name,
            "signature": sig.render(),
            "classification": match.row.description if match else "",
            "log": log,
            "files": self._relevant_files(log, sig.file),
        }
        messages = render("builder", "heal_patch", feedback="", **facts)
        entry["recovery"] = {"kind": Recovery.MODEL_PATCH.value, "attempts": []}
        for attempt in range(2):
            answer = self._call("builder", messages)
            for command in proposed_commands(answer):
                decision = check(command)
                if not decision.allowed:
                    entry["result"] = "forbidden command"
                    raise _Stop(
                        "stopped",
                        f"Builder proposed a forbidden command ({decision.rule}): {command}",
                    )
            edits = parse_edits(answer)
            reasons = precheck(edits, self.track) if edits else ["no unified diff in the answer"]
            verdict = "precheck"
            if not reasons:
                review: Review = self._call(
                    "guardian",
                    render("guardian", "heal_review", diff=answer, **facts),
                    Review,
                )
                verdict = review.verdict
                if review.verdict != "approve" or review.high:
                    reasons = [
                        f"[{c.severity}] {c.file} {c.message}".strip() for c in review.comments
                    ] or [review.summary]
            entry["recovery"]["attempts"].append({"verdict": verdict, "reasons": reasons})
            if not reasons:
                result = apply_edits(self.workdir, edits, EditPolicy(frozen=self._frozen()))
                if not result.ok:
                    reasons = [f"{r.path}: {r.reason}" for r in result.refused]
                else:
                    fix = Fix.patch(answer)
                    self._commit(gate, sig, Recovery.MODEL_PATCH.value, fix)
                    return "patch applied"
            self.emit(Notice(level="warning", message=f"patch rejected: {reasons[0]}"))
            if attempt == 0:
                messages = [
                    *messages,
                    {"role": "assistant", "content": answer},
                    {
                        "role": "user",
                        "content": "Rejected:\n" + "\n".join(f"- {r}" for r in reasons),
                    },
                ]
        raise _Stop("failed", f"patch for {gate.name} rejected twice: {reasons[0]}")

    def _call(self, persona: str, messages: list[dict[str, str]], schema: type | None = None):
        return ask_persona(self.gateway, self.config, persona, messages, schema)

    def _relevant_files(self, log: str, first: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for rel in [first, *_PATH_IN_LOG.findall(log)]:
            if not rel or rel in out or len(out) >= MAX_FILES:
                continue
            path = self.workdir / rel
            if not path.is_file():
                path = self.track.project_dir(self.workdir) / rel
            try:
                inside = path.resolve().is_relative_to(self.workdir.resolve())
            except OSError:
                inside = False
            if inside and path.is_file():
                key = path.resolve().relative_to(self.workdir.resolve()).as_posix()
                out.setdefault(key, path.read_text(encoding="utf-8", errors="replace")[:20_000])
        return out

    def _frozen(self) -> dict[str, str]:
        files = git_out(self.workdir, "ls-files").splitlines()
        return {
            p: file_sha256(self.workdir / p)
            for p in files
            if self.track.is_test_file(p) and (self.workdir / p).is_file()
        }

    def _commit(self, gate: GateConfig, sig: Any, kind: str, fix: Fix) -> None:
        assert self.ws is not None
        message = (
            f"fix(heal): {gate.name}: {sig.error_type} [{sig.hash}]\n\n"
            f"Signature: {sig.render()}\nRecovery: {kind}\n"
        )
        sha = commit_all(self.ws, message, emit=self.emit)
        if sha:
            self.commits.append(sha)
        self.pending = (sig, fix, gate.name)

    def _write_report(self, outcome: HealOutcome) -> Path:
        folder = self.repo / ".council" / "reports"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"heal-{self.stamp}.json"
        doc = {
            "status": outcome.status,
            "reason": outcome.reason,
            "branch": outcome.branch,
            "backup_branch": outcome.backup_branch,
            "commits": outcome.commits,
            "gates": [g.model_dump() for g in self.gates],
            "iterations": outcome.iterations,
            "cost_usd": outcome.cost_usd,
        }
        path.write_text(json.dumps(doc, indent=2, default=str), encoding="utf-8")
        return path
