"""What `council run` is asked, checked before anything is written: the repository, the
feature, and the `--tests` given (files or test ids inside the repository)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from council.config import CouncilConfig
from council.errors import UsageError
from council.pipelines.tracks import discover_tracks
from council.toolchains.test_ids import TestIdError, parse_test_spec
from council.workspace import require_git_repo
from council.workspace.git import require_commit


def _given_target(repo: Path, spec: str) -> str:
    """A `--tests` value (a file, a test id, or a file with -k / -t) in canonical form, its
    path repo-relative; the file must exist inside the repository."""
    try:
        target = parse_test_spec(spec)
    except TestIdError as exc:
        raise UsageError(str(exc)) from None
    if target.name and not target.path.endswith(".java") and "/" not in target.path:
        java = _java_test_file(repo, target.path)
        if java:
            return str(target.with_path(java))
    return str(target.with_path(_repo_relative(repo, target.path)))


def _java_test_file(repo: Path, name: str) -> str:
    """The test file of a JUnit class given as `CalcTest` or `demo.CalcTest`, or ''."""
    if not name.replace(".", "").replace("_", "").replace("$", "").isalnum():
        return ""
    tail = name.replace(".", "/") + ".java"
    found = sorted(
        p.relative_to(repo).as_posix()
        for p in repo.rglob(Path(tail).name)
        if p.as_posix().endswith("/" + tail) and ".git" not in p.relative_to(repo).parts
    )
    if len(found) > 1:
        tests = [f for f in found if "/test/" in f]
        found = tests or found
    return found[0] if found else ""


def _repo_relative(repo: Path, path: str) -> str:
    """A given test path as repo-relative POSIX text; it must be a file inside the repo."""
    root = repo.resolve()
    candidate = Path(path)
    # Relative paths may be given from where the user stands or from the repository's top.
    options = [candidate] if candidate.is_absolute() else [Path.cwd() / candidate, root / candidate]
    for option in options:
        full = option.resolve()
        if full.is_relative_to(root) and full.is_file():
            return full.relative_to(root).as_posix()
    if all(not o.resolve().is_relative_to(root) for o in options):
        raise UsageError(f"--tests {path}: not inside the repository {repo}")
    raise UsageError(f"--tests {path}: no such file in {repo}")


def check_request(
    repo: Path, config: CouncilConfig, feature: str, params: dict[str, Any]
) -> dict[str, Any]:
    """The run's params to store, once the repository, the feature and `--tests` are sound."""
    top = require_git_repo(repo)
    require_commit(top)
    if top != repo.resolve():
        raise UsageError(
            f"{repo} is inside the git repository {top} but is not its top level",
            hint="council works on a repository's top level: run it there, or copy the "
            "project into a repository of its own (scripts/demo does this for the example).",
        )
    if not feature.strip():
        raise UsageError("the feature request is empty")
    discover_tracks(repo, config)  # no project or a bad gate command: stop before starting
    given = [_given_target(repo, p) for p in params.get("given_tests") or []]
    return {"open_pr": bool(params.get("open_pr")), "given_tests": given}
