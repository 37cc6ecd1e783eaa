"""Submitting a run to the queue: resolve the repository, check the request, record the run.

Everything a user can get wrong (no such repository, not a git top level, an empty feature, a
bad council.yaml, a test file that does not exist) is refused here with a UsageError, before a
run row exists; what only running can tell is the run's own outcome.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import subprocess  # nosec B404 - git clone with a fixed argv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from council.errors import UsageError
from council.queue.jobs import JobQueue
from council.store import Store

KINDS = ("run", "heal")
_URL = re.compile(r"^(https?|ssh|git|file)://", re.IGNORECASE)
_SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:")  # git@github.com:org/repo.git
CLONE_TIMEOUT_S = 600


@dataclass
class Submission:
    """What a client asks for: `council run` (optionally tests-given) or `council heal`."""

    repo: str  # an absolute path on the server's machine, or a git URL
    kind: str = "run"
    feature: str = ""
    tests: list[str] = field(default_factory=list)
    max_iterations: int | None = None
    budget: float | None = None
    pr: bool = False
    gates: list[str] | None = None


_BAD_PATH_CHAR = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")  # controls, lone surrogates
_BAD_TEXT_CHAR = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def check_text(sub: Submission) -> None:
    """Refuse characters no path, URL or commit message may hold (a NUL, a control character,
    half of a UTF-16 pair): the file system and git would fail on them mid-run."""
    named = [("repo", sub.repo, _BAD_PATH_CHAR), ("feature", sub.feature, _BAD_TEXT_CHAR)]
    named += [("tests", t, _BAD_PATH_CHAR) for t in sub.tests]
    named += [("gates", g, _BAD_PATH_CHAR) for g in sub.gates or []]
    for name, value, bad in named:
        found = bad.search(value)
        if found:
            raise UsageError(
                f"{name} holds the character U+{ord(found.group()):04X}, which it may not"
            )


def is_url(repo: str) -> bool:
    return bool(_URL.match(repo) or _SCP_LIKE.match(repo))


def repo_key(repo: str) -> str:
    """The identity of a repository as keys name it: a URL as given (no trailing slash or
    .git), a path resolved.

    A URL with a `.` or `..` segment is refused: git would follow it to another repository
    than the one a key's pattern seems to name (`https://host/org/../other` matches `org/*`).
    """
    if is_url(repo):
        # The part after the host (scheme://host/PATH or user@host:PATH), %-escapes decoded.
        rest = _URL.sub("", repo, count=1).split("/", 1) if _URL.match(repo) else None
        path = unquote(rest[-1] if rest else repo.split(":", 1)[-1])
        if any(part in (".", "..") for part in re.split(r"[/\\]", path)):
            raise UsageError(f"repository URL {repo!r} has a '.' or '..' segment; name it plainly")
        return repo.rstrip("/").removesuffix(".git")
    return str(Path(repo).expanduser().resolve())


def local_checkout(repo: str, repos_dir: Path) -> Path:
    """The repository's folder on this machine: the path itself, or the server's clone of a URL
    (cloned on first use)."""
    if not is_url(repo):
        path = Path(repo).expanduser()
        if not path.is_absolute():
            raise UsageError(
                f"repository path {repo!r} must be absolute (it is read by the server)"
            )
        if not path.is_dir():
            raise UsageError(f"no repository at {repo} on the server")
        return path.resolve()
    key = repo_key(repo)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", key.rsplit("/", 1)[-1])[:40] or "repo"
    dest = repos_dir / f"{slug}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    repos_dir.mkdir(parents=True, exist_ok=True)
    with open(repos_dir / f".{dest.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two submissions of one URL clone it once
        if not (dest / ".git").exists():
            clone(repo, dest)
    return dest


def clone(url: str, dest: Path) -> None:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}  # never wait for a password
    try:
        done = subprocess.run(  # nosec B603 B607 - fixed argv, the URL after `--`
            ["git", "clone", "--quiet", "--", url, str(dest)],
            capture_output=True,
            text=True,
            timeout=CLONE_TIMEOUT_S,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise UsageError(f"cloning {url} took more than {CLONE_TIMEOUT_S} s") from None
    if done.returncode != 0:
        raise UsageError(f"cannot clone {url}: {done.stderr.strip()[-500:]}")


def update_clone(path: Path) -> None:
    """Bring the server's clone of a URL up to date before a run branches from it."""
    subprocess.run(  # nosec B603 B607 - fixed argv
        ["git", "-C", str(path), "pull", "--quiet", "--ff-only"],
        capture_output=True,
        timeout=CLONE_TIMEOUT_S,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        check=False,
    )


def _check_repo(root: Path) -> None:
    from council.workspace.git import require_commit, require_git_repo

    top = require_git_repo(root)
    if top != root:
        raise UsageError(f"{root} is inside the git repository {top} but is not its top level")
    require_commit(top)


def _options(sub: Submission) -> dict[str, Any]:
    if sub.budget is not None and not sub.budget > 0:
        raise UsageError(f"budget must be more than 0 (USD), got {sub.budget:g}")
    if sub.gates and sub.kind != "heal":
        raise UsageError("gates choose what a heal runs; a run takes none (use kind heal)")
    if sub.max_iterations is not None and sub.max_iterations < 1:
        raise UsageError(f"max_iterations must be at least 1, got {sub.max_iterations}")
    return {
        "max_iterations": sub.max_iterations,
        "budget": sub.budget,
        "gates": sub.gates,
        "url": sub.repo if is_url(sub.repo) else None,
    }


def submit(store: Store, sub: Submission, *, repos_dir: Path, key_id: str | None = None) -> str:
    """Check `sub` as its flow would at start, record its run as queued, return the run id."""
    from council.config import resolve_config
    from council.pipelines.flows import flow_class

    if sub.kind not in KINDS:
        raise UsageError(f"unknown kind {sub.kind!r} (known: {', '.join(KINDS)})")
    check_text(sub)
    options = _options(sub)
    root = local_checkout(sub.repo, repos_dir)
    _check_repo(root)
    config, _source = resolve_config(root, None)
    flow = flow_class(sub.kind)
    if sub.kind == "run":
        feature = sub.feature
        asked = {"open_pr": sub.pr, "given_tests": sub.tests}
    else:
        from council.pipelines.heal import heal_title, plan_gates
        from council.pipelines.tracks import discover_tracks

        groups = plan_gates(discover_tracks(root, config), list(config.gates), sub.gates or None)
        feature = heal_title([slot for group in groups for slot in group])
        asked = {"max_iterations": sub.max_iterations, "only_gates": sub.gates or None}
    # The flow's own check (what `council run` / `heal` refuse), and the params it stores.
    params = flow.check(root, config, feature, asked)
    run_id = store.create_run(
        feature=feature,
        repo=str(root),
        config={**config.snapshot(), "params": params},
        kind=flow.kind,
    )
    JobQueue(store).enqueue(
        run_id, kind=sub.kind, repo_key=repo_key(sub.repo), options=options, key_id=key_id
    )
    return run_id
