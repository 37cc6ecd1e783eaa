"""Commits and diffs on a council worktree, always measured against the run's base commit."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from council.errors import WorkspaceError
from council.events import CommitMade, EventSink, null_sink
from council.workspace.git import git, git_dir, git_env, has_identity, out
from council.workspace.worktree import Workspace

COUNCIL_NAME = "AI Council"
COUNCIL_EMAIL = "council@localhost"

# Generated code must not run outside the sandbox through the user's git hooks, and a signing
# prompt (commit.gpgsign) would hang an unattended run.
_COMMIT_CONFIG = ["-c", "core.hooksPath=/dev/null", "-c", "commit.gpgsign=false"]


def _identity(ws: Workspace) -> list[str]:
    if has_identity(ws.path):
        return []
    return ["-c", f"user.name={COUNCIL_NAME}", "-c", f"user.email={COUNCIL_EMAIL}"]


def commit_all(
    ws: Workspace,
    message: str,
    *,
    paths: Sequence[str] | None = None,
    emit: EventSink = null_sink,
) -> str | None:
    """Stage everything (or just `paths`) and commit; the new sha, or None if nothing changed."""
    pathspec = ["--", *paths] if paths else []
    if paths is not None and not paths:
        return None
    git(ws.path, "add", "--all", *pathspec)
    if git(ws.path, "diff", "--cached", "--quiet", *pathspec, check=False).returncode == 0:
        return None
    git(
        ws.path,
        *_COMMIT_CONFIG,
        *_identity(ws),
        "commit",
        "--quiet",
        "--no-verify",
        "--file=-",
        *pathspec,
        input=message if message.endswith("\n") else message + "\n",
    )
    sha = head_sha(ws)
    emit(CommitMade(sha=sha, branch=ws.branch, message=message.strip()))
    return sha


@contextmanager
def scratch_index(path: Path) -> Iterator[dict[str, str]]:
    """A throw-away copy of the worktree's index, so snapshots never disturb real staging."""
    fd, scratch = tempfile.mkstemp(prefix="council-index-")
    os.close(fd)
    try:
        index = git_dir(path, "--git-dir") / "index"
        if index.exists():
            shutil.copyfile(index, scratch)
        else:
            os.unlink(scratch)
        yield {"GIT_INDEX_FILE": scratch}
    finally:
        if os.path.exists(scratch):
            os.unlink(scratch)


def snapshot_tree(ws: Workspace) -> str:
    """The tree of the worktree as it is now, untracked files included (ignored ones not)."""
    return tree_of(ws.path)


def tree_of(path: Path, attempts: int = 5) -> str:
    """`snapshot_tree` for a worktree given by its folder.

    Parallel language tracks write files (an edit's temporary file, renamed into place) while
    another track snapshots the tree: `git add` then fails on a file that vanished between its
    directory scan and its stat. That is a race, not an error: take the snapshot again.
    """
    for attempt in range(1, attempts + 1):
        with scratch_index(path) as env:
            try:
                git(path, "add", "--all", extra_env=env)
            except WorkspaceError as exc:
                vanished = "unable to stat" in str(exc) or "No such file" in str(exc)
                if vanished and attempt < attempts:
                    continue
                raise
            return out(path, "write-tree", extra_env=env)
    raise AssertionError("unreachable")


def restore_tree(ws: Workspace, tree: str, paths: Sequence[str] = ()) -> None:
    """Make the worktree's files exactly `tree` (from `snapshot_tree`); HEAD and branch stay.

    Used on resume, so a step killed half-way starts again from what the step before left,
    not from half-applied edits. Ignored files (caches) are left alone. With `paths`, only
    those folders are restored (parallel language tracks each restore their own).
    """
    if not paths:
        git(ws.path, "read-tree", "--reset", "-u", tree)
        git(ws.path, "clean", "-fdq")
        git(ws.path, "reset", "-q")
        return
    spec = ["--", *paths]
    git(ws.path, "clean", "-fdq", *spec)
    git(ws.path, "checkout", tree, *spec)
    git(ws.path, "reset", "-q", *spec)


def diff(ws: Workspace) -> str:
    """Unified diff from the base commit to the worktree as it is now (committed or not)."""
    return git(
        ws.path, "diff", "--no-color", "--no-ext-diff", ws.base_sha, snapshot_tree(ws)
    ).stdout


def diff_stat(ws: Workspace) -> str:
    return out(ws.path, "diff", "--no-color", "--stat", ws.base_sha, snapshot_tree(ws))


def changed_files(ws: Workspace) -> list[str]:
    """Paths added, modified or deleted since the base commit (renames as delete + add)."""
    names = out(
        ws.path, "diff", "--name-only", "--no-renames", "-z", ws.base_sha, snapshot_tree(ws)
    )
    return sorted(name for name in names.split("\0") if name)


_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")


@dataclass
class ChangeScope:
    """What a run changed since its base commit: per repo-relative path, the line numbers of
    the current file that are new or modified, and the file's content at the base commit."""

    base_sha: str
    lines: dict[str, frozenset[int]] = field(default_factory=dict)
    ws: Workspace | None = field(default=None, repr=False)

    def at_base(self, path: str) -> bytes | None:
        """`path` as it was at the base commit; None when it did not exist there."""
        if self.ws is None:
            return None
        done = subprocess.run(  # bytes: a file need not be UTF-8
            ["git", "show", f"{self.base_sha}:{path}"],
            cwd=self.ws.path,
            env=git_env(),
            capture_output=True,
            timeout=60,
            check=False,
        )
        return done.stdout if done.returncode == 0 else None


def change_scope(ws: Workspace) -> ChangeScope:
    """The lines changed from the base commit to the worktree as it is now (untracked files
    included: every line of a new file is changed)."""
    text = out(
        ws.path,
        "-c",
        "core.quotepath=off",
        "diff",
        "-U0",
        "--no-color",
        "--no-ext-diff",
        "--no-renames",
        ws.base_sha,
        snapshot_tree(ws),
    )
    return ChangeScope(ws.base_sha, parse_changed_lines(text), ws)


def parse_changed_lines(diff_text: str) -> dict[str, frozenset[int]]:
    """New-side line numbers per file from a `-U0` diff. A pure deletion marks the lines on
    both sides of the gap: joining them is what the deletion changed."""
    found: dict[str, set[int]] = {}
    current: set[int] | None = None
    for line in diff_text.splitlines():
        if line.startswith("+++ "):
            name = line[4:]
            current = None if name == "/dev/null" else found.setdefault(name[2:], set())
        elif current is not None and (match := _HUNK.match(line)):
            start, count = int(match.group(1)), int(match.group(2) or 1)
            if count:
                current.update(range(start, start + count))
            else:
                current.update((max(start, 1), start + 1))
    return {path: frozenset(lines) for path, lines in found.items()}


def head_sha(ws: Workspace) -> str:
    return out(ws.path, "rev-parse", "HEAD")


def commits_since_base(ws: Workspace) -> list[tuple[str, str]]:
    """(sha, subject) of the run's commits, oldest first."""
    log = out(ws.path, "log", "--reverse", "--format=%H%x1f%s", f"{ws.base_sha}..HEAD")
    return [tuple(line.split("\x1f", 1)) for line in log.splitlines() if line]  # type: ignore[misc]
