"""Run git for the workspace layer: a clean environment, clear errors, secrets never echoed."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from council.errors import UsageError, WorkspaceError
from council.redact import redact

# Variables that would point git at another repository or index (set when council runs from a
# git hook, for example) and silently make us write to the user's index.
_REDIRECTING = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
)


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _REDIRECTING}
    env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C", GIT_OPTIONAL_LOCKS="0")
    env.update(extra or {})
    return env


def git(
    cwd: Path,
    *args: str,
    check: bool = True,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    timeout_s: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run `git args...` in `cwd`; on failure raise WorkspaceError with git's (redacted) words."""
    argv = ["git", *args]
    try:
        done = subprocess.run(
            argv,
            cwd=cwd,
            env=dict(env) if env is not None else git_env(extra_env),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except FileNotFoundError as exc:
        raise WorkspaceError("git is not installed (or not on PATH)") from exc
    except subprocess.TimeoutExpired as exc:
        raise WorkspaceError(f"git {args[0]} timed out after {timeout_s:.0f}s") from exc
    if check and done.returncode != 0:
        secrets = {**os.environ, **(extra_env or {}), **(env or {})}
        detail = redact((done.stderr or done.stdout).strip(), secrets)
        raise WorkspaceError(f"git {redact(args[0], secrets)} failed: {detail}")
    return done


def out(cwd: Path, *args: str, **kwargs) -> str:
    return git(cwd, *args, **kwargs).stdout.strip()


def require_git_repo(path: Path) -> Path:
    """The top level of the work tree containing `path`; UsageError if there is none."""
    path = Path(path)
    if not path.is_dir():
        raise UsageError(f"{path} is not a git repository (no such directory)")
    done = git(path, "rev-parse", "--show-toplevel", check=False)
    if done.returncode != 0 or not done.stdout.strip():
        raise UsageError(
            f"{path} is not a git repository",
            hint="Run council inside a git checkout, or `git init` and commit first.",
        )
    return Path(done.stdout.strip()).resolve()


def require_commit(repo: Path) -> str:
    """HEAD's sha; UsageError for a repository with no commits yet."""
    done = git(repo, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False)
    if done.returncode != 0:
        raise UsageError(
            f"{repo} has no commits yet: council branches from HEAD",
            hint="Make a first commit (`git commit --allow-empty -m init`) and try again.",
        )
    return done.stdout.strip()


def git_dir(cwd: Path, which: str = "--git-common-dir") -> Path:
    raw = out(cwd, "rev-parse", which)
    return (cwd / raw).resolve() if not os.path.isabs(raw) else Path(raw)


def has_identity(cwd: Path) -> bool:
    name = git(cwd, "config", "user.name", check=False).stdout.strip()
    email = git(cwd, "config", "user.email", check=False).stdout.strip()
    return bool(name and email)


def ref_exists(cwd: Path, ref: str) -> bool:
    return git(cwd, "show-ref", "--verify", "--quiet", ref, check=False).returncode == 0
