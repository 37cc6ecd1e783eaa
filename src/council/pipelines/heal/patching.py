"""A heal's model patch: Builder proposes, plain checks and Guardian review, `git apply`.

Commands a model proposes pass the command policy or stop the heal; a diff is checked
deterministically (no test edits, no deleted tests, no os.system/eval/exec/shell=True/skip)
before Guardian sees it, and applied with `git apply --check` first.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from council.edits import EditPolicy, parse_edits
from council.events import PatchApplied, PatchProposed, PatchRefused, PatchReviewed
from council.personas import Review
from council.pipelines.lifecycle import Stop
from council.pipelines.tracks import Track
from council.recovery import Fix, Recovery, gate_run
from council.recovery.patch import apply_patch, diff_text
from council.recovery.proposed import first_forbidden, proposed_commands, run_allowed
from council.sandbox import Limits

from .gates import LOG_LINES, Failure, hang_location, hangs, trimmed_log
from .state import HealContext

MAX_FILES = 6
_FORBIDDEN_ADDED = (
    (re.compile(r"\bos\.system\s*\("), "adds os.system("),
    (re.compile(r"(?<![\w.])eval\s*\("), "adds eval("),
    (re.compile(r"(?<![\w.])exec\s*\("), "adds exec("),
    (re.compile(r"shell\s*=\s*True"), "adds subprocess with shell=True"),
    (re.compile(r"pytest\.mark\.skip"), "skips a test (@pytest.mark.skip)"),
)
_PATH_IN_LOG = re.compile(r"([\w./-]+\.(?:py|[cm]?[jt]sx?|java))\b")


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


def _lines_of(edit: Any) -> tuple[list[str], list[str]]:
    if edit.kind == "udiff":
        removed = [ln[1:] for h in edit.hunks or [] for ln in h.lines if ln[:1] == "-"]
        added = [ln[1:] for h in edit.hunks or [] for ln in h.lines if ln[:1] == "+"]
        return removed, added
    if edit.kind == "search_replace":
        return (edit.search or "").splitlines(), (edit.replace or "").splitlines()
    return [], (edit.content or "").splitlines()


def _udiff_edits(answer: str) -> tuple[str, list[Any]]:
    diff = diff_text(answer)
    return diff, [e for e in parse_edits(f"```diff\n{diff}```\n") if e.kind == "udiff"]


def apply_answer(ctx: HealContext, answer: str) -> tuple[bool, list[str], str]:
    """Pre-check and apply the diff in a model answer: (applied, reasons refused, method)."""
    diff, edits = _udiff_edits(answer)
    reasons = precheck(edits, ctx.tracks) if diff else ["no unified diff in the answer"]
    if reasons:
        return False, reasons, ""
    result = apply_patch(ctx.workdir, diff, EditPolicy(frozen=ctx.frozen()))
    return result.applied, result.reasons, result.method


def model_patch(ctx: HealContext, failure: Failure, match: Any) -> str:
    """Ask Builder for a patch (twice at most, the second time told why the first was
    refused); commit the first one that passes the checks, the review and `git apply`."""
    slot, sig = failure.slot, failure.sig
    log = trimmed_log(gate_run(failure.subject).output)
    if hangs(failure.subject):
        # The tail of a killed run is noise; where it was stuck goes first, whole.
        log = f"{hang_location(failure.subject)}\n\n{trimmed_log(log, LOG_LINES // 2)}"
    facts = {
        "gate": slot.label,
        "signature": sig.render(),
        "classification": match.row.description if match else "",
        "log": log,
        "files": relevant_files(ctx, log, sig.file, ctx.root(slot.track)),
    }
    messages = ctx.prompts.render("builder", "heal_patch", feedback="", **facts)
    deny = ctx.config.policy.deny
    reasons: list[str] = []
    for attempt in (1, 2):
        answer = ctx.call("builder", messages)
        commands = proposed_commands(answer)
        diff, edits = _udiff_edits(answer)
        ctx.emit(
            PatchProposed(
                iteration=ctx.iteration,
                attempt=attempt,
                files=[e.path for e in edits],
                size=sum(len(a) + len(r) for r, a in map(_lines_of, edits)),
                diff=diff,
                commands=commands,
            )
        )
        forbidden = first_forbidden(commands, deny)
        if forbidden is not None:
            what = {
                "command": forbidden.command,
                "rule": forbidden.decision.rule,
                "reason": forbidden.decision.reason,
            }
            why = f"Builder proposed a forbidden command: {forbidden.render()}"
            ctx.emit(
                PatchRefused(
                    iteration=ctx.iteration, attempt=attempt, reasons=[why], forbidden=what
                )
            )
            raise Stop("stopped", why)
        reasons = _review(ctx, attempt, answer, diff, edits, commands, facts)
        method = "commands only"
        if not reasons and diff:
            _applied, reasons, method = apply_answer(ctx, answer)
        if not reasons:
            ran = _run_commands(ctx, failure, commands) if commands else []
            ctx.emit(
                PatchApplied(
                    iteration=ctx.iteration,
                    attempt=attempt,
                    method=method,
                    files=[e.path for e in edits],
                    commands=ran,
                )
            )
            ctx.commit(slot.label, sig, Recovery.MODEL_PATCH.value, Fix.patch(answer))
            return f"patch applied ({method})"
        ctx.emit(PatchRefused(iteration=ctx.iteration, attempt=attempt, reasons=reasons))
        if attempt == 1:
            messages = [
                *messages,
                {"role": "assistant", "content": answer},
                {
                    "role": "user",
                    "content": ctx.prompts.text("feedback_patch_refused", reasons=reasons),
                },
            ]
    raise Stop("failed", f"patch for {slot.label} refused twice: {reasons[0]}")


def _review(
    ctx: HealContext,
    attempt: int,
    answer: str,
    diff: str,
    edits: list[Any],
    commands: list[str],
    facts: dict[str, Any],
) -> list[str]:
    """The plain checks, then (when they pass) Guardian: the reasons to refuse, or []."""
    if diff:
        reasons = precheck(edits, ctx.tracks)
    else:
        reasons = [] if commands else ["no unified diff in the answer"]
    if reasons:
        ctx.emit(
            PatchReviewed(
                iteration=ctx.iteration,
                attempt=attempt,
                persona="",
                verdict="precheck",
                findings=reasons,
            )
        )
        return reasons
    asked = ctx.prompts.render("guardian", "heal_review", diff=answer, **facts)
    review: Review = ctx.call("guardian", asked, Review)
    findings = [f"[{c.severity}] {c.file} {c.message}".strip() for c in review.comments]
    ctx.emit(
        PatchReviewed(
            iteration=ctx.iteration, attempt=attempt, verdict=review.verdict, findings=findings
        )
    )
    if review.verdict != "approve" or review.high:
        return findings or [review.summary]
    return []


def _run_commands(ctx: HealContext, failure: Failure, commands: list[str]) -> list[dict]:
    """The commands an approved answer proposes, in the sandbox, in the gate's folder."""
    slot = failure.slot
    ran = run_allowed(
        commands,
        ctx.root(slot.track),
        deny=ctx.config.policy.deny,
        limits=Limits(memory_mb=ctx.config.sandbox.memory_mb),
        network=ctx.config.sandbox.network,
        emit=ctx.emit,
    )
    if slot.track is not None:
        slot.track.env = None
    return ran


def relevant_files(ctx: HealContext, log: str, first: str, root: Path) -> dict[str, str]:
    """The files the failure names (its own first, then those in the log), inside the
    worktree, at most MAX_FILES."""
    out: dict[str, str] = {}
    top = ctx.workdir.resolve()
    for rel in [first, *_PATH_IN_LOG.findall(log)]:
        if not rel or len(out) >= MAX_FILES:
            continue
        path = ctx.workdir / rel
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
