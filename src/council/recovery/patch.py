"""Apply a model's unified diff the strict way: `git apply --check` first, then `git apply`.

A patch is only ever applied whole. git reads it with `--recount` (models miscount the lines in
`@@ -a,b +c,d @@` headers; git then counts them itself) and must agree that every hunk fits the
files as they are. The one fallback: hunks with no line numbers at all (a bare `@@`), which git
cannot read, go to the tolerant applier (`council.edits`), which still needs every context and
removed line to be in the file, under the same path policy. A patch git read and refused
is refused: the reason is git's own words, and nothing in the worktree changes.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from council.edits import EditPolicy, FileEdit, apply_edits, parse_edits
from council.edits.validate import refusal_reason
from council.fences import DIFF_LANGS, blocks

_BARE_HUNK = re.compile(r"^@@(?!\s*-\d)")
GIT_TIMEOUT_S = 60


@dataclass
class PatchResult:
    """Whether a patch was applied, how, and when not, why (nothing changed then)."""

    applied: bool
    method: str = ""  # "git apply" or "tolerant apply (hunks without line numbers)"
    files: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


def diff_text(answer: str) -> str:
    """The unified diff(s) in a model answer: ```diff blocks, else a bare `--- a/` ... diff."""
    found = [
        block.body
        for block in blocks(answer)
        if block.lang in DIFF_LANGS or block.body.startswith(("--- ", "diff --git"))
    ]
    lines = answer.splitlines()
    if not found and any(ln.startswith("--- ") for ln in lines):
        start = next(k for k, ln in enumerate(lines) if ln.startswith("--- "))
        found.append("\n".join(lines[start:]))
    text = "\n".join(b.rstrip("\n") for b in found if b.strip())
    return text + "\n" if text else ""


def _git_apply(root: Path, diff: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # nosec B603 B607 - fixed git argv, the diff goes through stdin
        ["git", "-C", str(root), "apply", "--recount", "--whitespace=nowarn", *extra, "-"],
        input=diff,
        capture_output=True,
        text=True,
        timeout=GIT_TIMEOUT_S,
        check=False,
    )


def path_refusals(root: Path, edits: list[FileEdit], policy: EditPolicy) -> list[str]:
    """Paths the patch may not touch (outside the repo, `.git`, symlinks, frozen tests)."""
    found = []
    for edit in edits:
        reason = refusal_reason(root, edit.path, policy)
        if reason:
            found.append(f"{edit.path}: {reason}")
    return found


def apply_patch(root: Path, diff: str, policy: EditPolicy) -> PatchResult:
    """Apply `diff` (unified, repo-relative paths) in the git worktree `root`, all or nothing."""
    if not diff.strip():
        return PatchResult(False, reasons=["no unified diff in the answer"])
    edits = [e for e in parse_edits(f"```diff\n{diff}```\n") if e.kind == "udiff"]
    if not edits:
        return PatchResult(False, reasons=["the diff names no file"])
    refused = path_refusals(root, edits, policy)
    if refused:
        return PatchResult(False, reasons=refused)
    files = [e.path for e in edits]
    check = _git_apply(root, diff, "--check")
    if check.returncode == 0:
        done = _git_apply(root, diff)
        if done.returncode == 0:
            return PatchResult(True, "git apply", files)
        return PatchResult(False, reasons=[f"git apply: {_words(done)}"])
    if any(_BARE_HUNK.match(line) for line in diff.splitlines()):
        before = {f: _read_bytes(root / f) for f in files}
        result = apply_edits(root, edits, policy)
        if result.ok and result.applied:
            return PatchResult(True, "tolerant apply (hunks without line numbers)", files)
        _restore(root, before)  # all or nothing: undo the files that did apply
        why = [f"{r.path}: {r.reason}" for r in result.refused]
        why += [f"{f.edit.path}: {f.reason}" for f in result.failed]
        return PatchResult(False, reasons=why or [f"git apply --check: {_words(check)}"])
    return PatchResult(False, reasons=[f"git apply --check: {_words(check)}"])


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _restore(root: Path, before: dict[str, bytes | None]) -> None:
    for rel, data in before.items():
        path = root / rel
        if data is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(data)


def _words(proc: subprocess.CompletedProcess[str]) -> str:
    text = (proc.stderr or proc.stdout).strip()
    return " | ".join(text.splitlines()[:6]) or f"exit {proc.returncode}"
