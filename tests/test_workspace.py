"""Worktrees, commits and diffs on real git repositories; the user's checkout is never touched."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from council.errors import UsageError, WorkspaceError
from council.events import CommitMade
from council.workspace import (
    Workspace,
    changed_files,
    commit_all,
    commits_since_base,
    conventional_message,
    create_worktree,
    diff,
    diff_stat,
    file_sha256,
    head_sha,
    open_worktree,
    remove_worktree,
    require_git_repo,
    slugify,
)

ISOLATED_GIT = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z",
}


@pytest.fixture(autouse=True)
def no_global_git_config(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's ~/.gitconfig (identity, hooks, signing) must not change what we test.
    for key, value in ISOLATED_GIT.items():
        monkeypatch.setenv(key, value)


def sh(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def make_repo(path: Path, *, identity: bool = True) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    sh(path, "init", "--quiet", "-b", "main")
    if identity:
        sh(path, "config", "user.name", "Dev Eloper")
        sh(path, "config", "user.email", "dev@example.com")
    (path / "app.py").write_text("def add(a, b):\n    return a + b\n")
    (path / "README.md").write_text("# demo\n")
    (path / ".gitignore").write_text("*.pyc\n")
    sh(path, "add", ".")
    sh(path, "-c", "user.name=x", "-c", "user.email=x@x", "commit", "--quiet", "-m", "init")
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


def tree_hashes(root: Path) -> dict[str, str]:
    hashes = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] in (".git", ".council") or not path.is_file():
            continue
        hashes[str(rel)] = file_sha256(path)
    return hashes


def user_state(repo: Path) -> dict[str, object]:
    return {
        "status": sh(repo, "status", "--porcelain=v1", "--untracked-files=all"),
        "stash": sh(repo, "stash", "list"),
        "head": sh(repo, "rev-parse", "HEAD"),
        "branch": sh(repo, "symbolic-ref", "HEAD"),
        "index": file_sha256(repo / ".git" / "index"),
        "files": tree_hashes(repo),
        "gitignore": (repo / ".gitignore").read_bytes(),
        "staged_diff": sh(repo, "diff", "--cached"),
        "unstaged_diff": sh(repo, "diff"),
    }


def test_users_checkout_index_and_stash_are_untouched(repo: Path) -> None:
    # A user mid-work: a stash, a staged change, an unstaged modification, an untracked file.
    (repo / "README.md").write_text("# demo\nstashed\n")
    sh(repo, "stash", "push", "--quiet", "-m", "wip")
    (repo / "app.py").write_text("def add(a, b):\n    return a + b  # staged\n")
    sh(repo, "add", "app.py")
    (repo / "README.md").write_text("# demo\nuncommitted edit\n")
    (repo / "notes.txt").write_text("untracked\n")
    before = user_state(repo)
    assert before["status"] and before["stash"]

    ws = create_worktree(repo, "Add multiply()")
    # The worktree starts from HEAD, without the user's uncommitted work.
    assert (ws.path / "app.py").read_text() == "def add(a, b):\n    return a + b\n"
    assert not (ws.path / "notes.txt").exists()
    (ws.path / "app.py").write_text("def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n")
    (ws.path / "test_app.py").write_text("from app import mul\n")
    sha = commit_all(ws, "feat(app): multiply")
    assert sha and user_state(repo) == before
    remove_worktree(ws)

    after = user_state(repo)
    assert after == before
    assert not ws.path.exists()
    # The branch survives for review; the user's .gitignore was not edited.
    assert sh(repo, "rev-parse", ws.branch).strip() == sha


def test_create_worktree_branch_path_and_exclude(repo: Path) -> None:
    ws = create_worktree(repo, "Add a /login endpoint!")
    assert ws.branch == "council/add-a-login-endpoint"
    assert ws.path == repo.resolve() / ".council" / "worktrees" / "add-a-login-endpoint"
    assert ws.base_sha == sh(repo, "rev-parse", "HEAD").strip()
    assert ws.repo == repo.resolve()
    assert sh(ws.path, "symbolic-ref", "--short", "HEAD").strip() == ws.branch
    exclude = (repo / ".git" / "info" / "exclude").read_text()
    assert "/.council/" in exclude.splitlines()
    # Ignored: the user's status does not show the worktrees.
    assert sh(repo, "status", "--porcelain", "--untracked-files=all") == ""

    second = create_worktree(repo, "add a login endpoint")
    third = create_worktree(repo, "add a login endpoint")
    assert (second.branch, third.branch) == (
        "council/add-a-login-endpoint-2",
        "council/add-a-login-endpoint-3",
    )
    assert len({ws.path, second.path, third.path}) == 3
    # The exclude line is written once.
    assert (repo / ".git" / "info" / "exclude").read_text().count("/.council/") == 1


def test_custom_root(repo: Path, tmp_path: Path) -> None:
    ws = create_worktree(repo, "x", root=tmp_path / "elsewhere")
    assert ws.path == (tmp_path / "elsewhere" / "x").resolve()
    assert (ws.path / "app.py").exists()


def test_commit_all_returns_sha_and_none_when_clean(repo: Path) -> None:
    ws = create_worktree(repo, "feature")
    events: list = []
    assert commit_all(ws, "chore: nothing", emit=events.append) is None
    assert events == []

    (ws.path / "new.py").write_text("x = 1\n")
    (ws.path / "README.md").unlink()
    sha = commit_all(ws, "feat(core): add x\n\nBody text.", emit=events.append)
    assert sha == head_sha(ws)
    assert sh(ws.path, "log", "-1", "--format=%an <%ae>|%s|%b", sha).strip() == (
        "Dev Eloper <dev@example.com>|feat(core): add x|Body text."
    )
    assert [type(e) for e in events] == [CommitMade]
    assert events[0].sha == sha and events[0].branch == ws.branch
    assert sh(ws.path, "status", "--porcelain") == ""
    assert commit_all(ws, "again") is None


def test_commit_author_defaults_to_council(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "anon", identity=False)
    ws = create_worktree(repo, "f")
    (ws.path / "a.txt").write_text("a\n")
    sha = commit_all(ws, "feat: a")
    assert sh(ws.path, "log", "-1", "--format=%an <%ae>", sha).strip() == (
        "AI Council <council@localhost>"
    )


def test_commit_only_given_paths(repo: Path) -> None:
    ws = create_worktree(repo, "partial")
    (ws.path / "tests.py").write_text("def test(): pass\n")
    (ws.path / "code.py").write_text("pass\n")
    sha = commit_all(ws, "test: first", paths=["tests.py"])
    assert sha
    assert sh(ws.path, "show", "--name-only", "--format=", sha).split() == ["tests.py"]
    assert sh(ws.path, "status", "--porcelain").strip() == "?? code.py"
    assert commit_all(ws, "nothing", paths=[]) is None


def test_commit_does_not_run_user_hooks(repo: Path) -> None:
    hook = repo / ".git" / "hooks" / "pre-commit"
    marker = repo.parent / "hook-ran"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    hook.chmod(0o755)
    ws = create_worktree(repo, "hooks")
    (ws.path / "a.py").write_text("a = 1\n")
    assert commit_all(ws, "feat: a")
    assert not marker.exists()


def test_diff_includes_committed_uncommitted_and_untracked(repo: Path) -> None:
    ws = create_worktree(repo, "diffs")
    (ws.path / "app.py").write_text("def add(a, b):\n    return a + b\n\nX = 1\n")
    commit_all(ws, "feat: x")
    (ws.path / "README.md").write_text("# demo\nmore\n")  # uncommitted
    (ws.path / "new_mod.py").write_text("Y = 2\n")  # untracked
    (ws.path / "junk.pyc").write_text("ignored\n")  # ignored by the repo's .gitignore
    index_before = file_sha256(Path(sh(ws.path, "rev-parse", "--git-dir").strip()) / "index")

    assert changed_files(ws) == ["README.md", "app.py", "new_mod.py"]
    text = diff(ws)
    assert "+X = 1" in text and "+more" in text and "+Y = 2" in text
    assert "junk.pyc" not in text
    stat = diff_stat(ws)
    assert "3 files changed" in stat and "new_mod.py" in stat
    # Taking a diff does not stage anything in the worktree either.
    assert sh(ws.path, "status", "--porcelain").splitlines() == [" M README.md", "?? new_mod.py"]
    git_dir = Path(sh(ws.path, "rev-parse", "--git-dir").strip())
    assert file_sha256(git_dir / "index") == index_before


def test_commits_since_base(repo: Path) -> None:
    ws = create_worktree(repo, "log")
    assert commits_since_base(ws) == []
    (ws.path / "a").write_text("a")
    first = commit_all(ws, "test: a")
    (ws.path / "b").write_text("b")
    second = commit_all(ws, "feat: b\n\nbody")
    assert commits_since_base(ws) == [(first, "test: a"), (second, "feat: b")]


def test_open_worktree_resumes_and_recreates(repo: Path) -> None:
    ws = create_worktree(repo, "resume me")
    (ws.path / "a.py").write_text("a = 1\n")
    sha = commit_all(ws, "feat: a")
    # User's HEAD moves on; the base stays the run's base.
    (repo / "other.txt").write_text("x")
    sh(repo, "add", "other.txt")
    sh(repo, "commit", "--quiet", "-m", "user work")

    again = open_worktree(repo, ws.branch)
    assert again == ws
    assert open_worktree(repo, "resume-me") == ws  # the council/ prefix is optional

    remove_worktree(ws, keep_branch=True)
    revived = open_worktree(repo, ws.branch)
    assert revived.base_sha == ws.base_sha and revived.branch == ws.branch
    assert head_sha(revived) == sha and (revived.path / "a.py").exists()
    with pytest.raises(WorkspaceError, match="no branch"):
        open_worktree(repo, "council/never-made")


def test_remove_worktree_and_branch(repo: Path) -> None:
    ws = create_worktree(repo, "gone")
    (ws.path / "scratch.txt").write_text("uncommitted")
    remove_worktree(ws, keep_branch=False)
    assert not ws.path.exists()
    assert sh(repo, "branch", "--list", ws.branch) == ""
    assert ws.branch not in sh(repo, "worktree", "list")


def test_not_a_repo_and_no_commits(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(UsageError, match="is not a git repository"):
        require_git_repo(plain)
    with pytest.raises(UsageError, match="is not a git repository"):
        create_worktree(plain, "x")
    empty = tmp_path / "empty"
    empty.mkdir()
    sh(empty, "init", "--quiet")
    with pytest.raises(UsageError, match="no commits"):
        create_worktree(empty, "x")
    assert UsageError.exit_code == 2


def test_require_git_repo_finds_top_level(repo: Path) -> None:
    sub = repo / "pkg"
    sub.mkdir()
    assert require_git_repo(sub) == repo.resolve()
    ws = create_worktree(sub, "from a subdir")
    assert ws.repo == repo.resolve()


def test_git_redirect_variables_are_ignored(repo: Path, monkeypatch, tmp_path: Path) -> None:
    # As inside a git hook: GIT_INDEX_FILE points at the user's index. We must not write to it.
    monkeypatch.setenv("GIT_INDEX_FILE", str(repo / ".git" / "index"))
    monkeypatch.setenv("GIT_DIR", str(repo / ".git"))
    before = file_sha256(repo / ".git" / "index")
    ws = create_worktree(repo, "hooked")
    (ws.path / "n.py").write_text("n = 1\n")
    assert commit_all(ws, "feat: n")
    assert changed_files(ws) == ["n.py"]
    assert file_sha256(repo / ".git" / "index") == before


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Add a /login endpoint!", "add-a-login-endpoint"),
        ("  Ünïcödé café  ", "unicode-cafe"),
        ("!!!", "change"),
        ("x" * 60, "x" * 40),
        (
            "add rate limiting to the public search api endpoint",
            "add-rate-limiting-to-the-public-search",
        ),
    ],
)
def test_slugify(text: str, expected: str) -> None:
    assert slugify(text) == expected
    assert len(slugify(text)) <= 40


def test_conventional_message() -> None:
    assert conventional_message("feat", "api", "Add login.", "Why: users.") == (
        "feat(api): Add login\n\nWhy: users.\n"
    )
    assert (
        conventional_message("fix", None, "crash on empty\nsecond line") == "fix: crash on empty\n"
    )
    long = conventional_message("feat", "core", "word " * 30)
    assert len(long.splitlines()[0]) <= 72
    with pytest.raises(ValueError):
        conventional_message("feature", None, "x")


def test_file_sha256(tmp_path: Path) -> None:
    f = tmp_path / "f.bin"
    f.write_bytes(b"abc")
    assert file_sha256(f) == hashlib.sha256(b"abc").hexdigest()


def test_workspace_is_plain_data(repo: Path) -> None:
    ws = create_worktree(repo, "data")
    assert Workspace(ws.repo, ws.path, ws.branch, ws.base_sha) == ws


def test_a_file_that_vanishes_during_a_snapshot_is_a_race_taken_again(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Parallel language tracks: one track's edit writes a temporary file and renames it while
    # another track snapshots the tree, and `git add` fails on the file that went away.
    from council.workspace import changes

    (repo / "new.py").write_text("x = 1\n")
    real_git = changes.git
    failures = []

    def racing_git(cwd: Path, *args: str, **kwargs):
        if args[:1] == ("add",) and not failures:
            failures.append(args)
            raise WorkspaceError(
                "git add failed: fatal: unable to stat 'src/.app.js.x1.tmp': No such file or "
                "directory"
            )
        return real_git(cwd, *args, **kwargs)

    monkeypatch.setattr(changes, "git", racing_git)
    tree = changes.tree_of(repo)
    assert failures, "the race was not simulated"
    listed = sh(repo, "ls-tree", "-r", "--name-only", tree).split()
    assert "new.py" in listed

    # Any other failure of git add is still an error.
    def broken_git(cwd: Path, *args: str, **kwargs):
        if args[:1] == ("add",):
            raise WorkspaceError("git add failed: fatal: index file corrupt")
        return real_git(cwd, *args, **kwargs)

    monkeypatch.setattr(changes, "git", broken_git)
    with pytest.raises(WorkspaceError, match="index file corrupt"):
        changes.tree_of(repo)
