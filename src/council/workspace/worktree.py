"""Git worktrees for council runs: the user's checkout, index and stash are never touched.

Each run works on its own branch (`council/<slug>`) in a worktree under `<repo>/.council/`,
which is ignored through `.git/info/exclude` (never by editing the user's `.gitignore`).
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from council.errors import WorkspaceError
from council.workspace.git import (
    git,
    git_dir,
    out,
    ref_exists,
    require_commit,
    require_git_repo,
)
from council.workspace.naming import slugify

BRANCH_PREFIX = "council/"
EXCLUDE_LINE = "/.council/"
BASE_CONFIG = "councilbase"  # branch.<name>.councilbase = the sha the run started from


@dataclass
class Workspace:
    repo: Path  # top level of the user's checkout
    path: Path  # the worktree
    branch: str
    base_sha: str


def _ensure_excluded(repo: Path) -> None:
    exclude = git_dir(repo) / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    current = exclude.read_text(encoding="utf-8") if exclude.exists() else ""
    if EXCLUDE_LINE in current.splitlines():
        return
    prefix = "" if not current or current.endswith("\n") else "\n"
    with exclude.open("a", encoding="utf-8") as fh:
        fh.write(f"{prefix}# council worktrees and state\n{EXCLUDE_LINE}\n")


def ensure_council_ignored(repo: Path) -> None:
    """Make `<repo>/.council/` ignored by git (through `.git/info/exclude`). Public for the flows
    that keep state there without a worktree of their own (deploy's release state)."""
    _ensure_excluded(require_git_repo(repo))


def _free_branch(repo: Path, slug: str, root: Path) -> tuple[str, str]:
    """A branch name and directory name not used yet: slug, slug-2, slug-3, ..."""
    n = 1
    while True:
        name = slug if n == 1 else f"{slug}-{n}"
        branch = BRANCH_PREFIX + name
        if not ref_exists(repo, f"refs/heads/{branch}") and not (root / name).exists():
            return branch, name
        n += 1


def create_worktree(repo: Path, slug: str, *, root: Path | None = None) -> Workspace:
    """A new branch `council/<slug>` from HEAD, checked out in its own worktree."""
    top = require_git_repo(repo)
    base = require_commit(top)
    slug = slugify(slug)
    root = Path(root).resolve() if root else top / ".council" / "worktrees"
    _ensure_excluded(top)
    root.mkdir(parents=True, exist_ok=True)
    branch, dirname = _free_branch(top, slug, root)
    path = root / dirname
    git(top, "worktree", "add", "--quiet", "-b", branch, str(path), base)
    git(top, "config", f"branch.{branch}.{BASE_CONFIG}", base)
    return Workspace(repo=top, path=path, branch=branch, base_sha=base)


def _worktrees(repo: Path) -> list[dict[str, str]]:
    entries: list[dict[str, str]] = []
    for block in out(repo, "worktree", "list", "--porcelain").split("\n\n"):
        entry: dict[str, str] = {}
        for line in block.splitlines():
            key, _, value = line.partition(" ")
            entry[key] = value
        if entry:
            entries.append(entry)
    return entries


def open_worktree(repo: Path, branch: str) -> Workspace:
    """Re-open the worktree of `branch` (for resume); re-create it if only the branch is left."""
    top = require_git_repo(repo)
    if not branch.startswith(BRANCH_PREFIX) and not ref_exists(top, f"refs/heads/{branch}"):
        branch = BRANCH_PREFIX + branch
    if not ref_exists(top, f"refs/heads/{branch}"):
        raise WorkspaceError(f"no branch {branch} in {top}")
    base = git(top, "config", f"branch.{branch}.{BASE_CONFIG}", check=False).stdout.strip()
    if not base:
        base = out(top, "merge-base", branch, "HEAD")
    for entry in _worktrees(top):
        if entry.get("branch") == f"refs/heads/{branch}":
            path = Path(entry["worktree"])
            if path.is_dir():
                return Workspace(repo=top, path=path, branch=branch, base_sha=base)
    git(top, "worktree", "prune")
    path = top / ".council" / "worktrees" / branch.removeprefix(BRANCH_PREFIX).replace("/", "-")
    _ensure_excluded(top)
    path.parent.mkdir(parents=True, exist_ok=True)
    git(top, "worktree", "add", "--quiet", str(path), branch)
    return Workspace(repo=top, path=path, branch=branch, base_sha=base)


def remove_worktree(ws: Workspace, *, keep_branch: bool = True) -> None:
    """Remove the worktree directory (and the branch unless `keep_branch`)."""
    if ws.path.exists():
        git(ws.repo, "worktree", "remove", "--force", "--force", str(ws.path))
    git(ws.repo, "worktree", "prune")
    if not keep_branch and ref_exists(ws.repo, f"refs/heads/{ws.branch}"):
        git(ws.repo, "branch", "-D", ws.branch)
        git(ws.repo, "config", "--unset", f"branch.{ws.branch}.{BASE_CONFIG}", check=False)


def discard_branch(repo: Path, branch: str, *, leftover: Path | None = None) -> bool:
    """Remove a council branch (`council/...` only: never one of the user's), the worktree that
    has it checked out, `leftover` (a worktree folder a killed `git worktree add` may have left
    half-made, under `.council/`) and its recorded base. What is already gone is no error;
    True when something was removed. For flows that tidy up after themselves (deploy, heal)."""
    if not branch.startswith(BRANCH_PREFIX):
        raise WorkspaceError(f"{branch} is not a council branch; not removed")
    top = require_git_repo(repo)
    paths = [
        Path(e["worktree"]) for e in _worktrees(top) if e.get("branch") == f"refs/heads/{branch}"
    ]
    if leftover is not None:
        paths.append(leftover)
    removed = False
    for path in paths:
        if path.resolve() == top or not path.resolve().is_relative_to(top / ".council"):
            continue  # only council's own worktrees are removed here
        removed = removed or path.exists()
        git(top, "worktree", "remove", "--force", "--force", str(path), check=False)
        if path.exists():  # half-made: git may not know it
            shutil.rmtree(path, ignore_errors=True)
    git(top, "worktree", "prune")
    if ref_exists(top, f"refs/heads/{branch}"):
        git(top, "branch", "-D", branch)
        removed = True
    git(top, "config", "--unset", f"branch.{branch}.{BASE_CONFIG}", check=False)
    return removed


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
