"""Workspace: git worktrees, branches, commits and diffs for a run; GitHub pushes and PRs."""

from council.workspace.changes import (
    changed_files,
    commit_all,
    commits_since_base,
    diff,
    diff_stat,
    head_sha,
    restore_tree,
    snapshot_tree,
)
from council.workspace.git import require_git_repo
from council.workspace.github import (
    GitHubError,
    PullRequest,
    create_pull_request,
    open_pull_request,
    parse_remote,
    push_branch,
)
from council.workspace.naming import conventional_message, slugify
from council.workspace.worktree import (
    Workspace,
    create_worktree,
    discard_branch,
    ensure_council_ignored,
    file_sha256,
    open_worktree,
    remove_worktree,
)

__all__ = [
    "GitHubError",
    "PullRequest",
    "Workspace",
    "changed_files",
    "commit_all",
    "commits_since_base",
    "conventional_message",
    "create_pull_request",
    "create_worktree",
    "diff",
    "discard_branch",
    "diff_stat",
    "ensure_council_ignored",
    "file_sha256",
    "head_sha",
    "open_pull_request",
    "open_worktree",
    "parse_remote",
    "push_branch",
    "remove_worktree",
    "require_git_repo",
    "restore_tree",
    "slugify",
    "snapshot_tree",
]
