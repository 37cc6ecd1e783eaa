"""Deploys do not pile up branches and worktrees: before a new deploy sets up its own, the
earlier deploys of the same project and target are tidied away.

Kept:
- the branch of every earlier deploy that holds the commit of a live release or of the release
  the target last saw healthy (what serves, and what `council deploy rollback` goes back to:
  its commits stay reachable and inspectable), and the branch of the newest earlier deploy that
  finished green (the azure route's last good deploy);
- the new deploy's own branch and worktree (until the next deploy).
Removed: the worktrees of all earlier deploys (a branch is enough to look at or merge what a
deploy committed), every other earlier deploy's branch, and the branches and worktrees of the
service-layer runs they started (merged into their deploy's branch). An unfinished earlier deploy
(interrupted, failed) is superseded by the new one: resuming it says so.

Rollback and `council deploy status | logs` never need a worktree: they read the target's state
under `.council/deploy/` (exported releases, logs), which the target prunes itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from council.errors import CouncilError
from council.events import Notice
from council.pipelines.lifecycle import params_of
from council.targets import state_dir_for
from council.targets.local_state import load_state
from council.workspace import discard_branch, slugify
from council.workspace.git import git, ref_exists
from council.workspace.worktree import BRANCH_PREFIX

if TYPE_CHECKING:
    from council.pipelines.deploy.flow import DeployFlow

RUNS_LOOKED_AT = 500  # earlier runs are tidied by each deploy: the older ones are gone already


def setup_slug(target: str, run_id: str) -> str:
    """A deploy's branch name (after `council/`): its own per run, known before it exists, so
    what a set-up cut short by a kill left is found again."""
    return f"deploy-{target}-{run_id.removeprefix('r-')}"


def clear_half_made(repo: Path, slug: str) -> bool:
    """Remove the branch and worktree a set-up under `slug` killed half-way left (a set-up
    that never finished holds no commit: the artefacts come in a later step)."""
    name = slugify(slug)
    folder = repo / ".council" / "worktrees" / name
    return discard_branch(repo, BRANCH_PREFIX + name, leftover=folder)


def tidy_earlier_deploys(flow: DeployFlow) -> list[str]:
    """Remove what earlier deploys of this project and target left (see the module's doc);
    the branches removed. Best effort: a failure to tidy is a warning, never a failed deploy."""
    try:
        return _tidy(flow)
    except (CouncilError, OSError) as exc:
        flow.emit(Notice(level="warning", message=f"earlier deploys not tidied: {exc}"))
        return []


def _tidy(flow: DeployFlow) -> list[str]:
    target, project = flow.params["target"], flow.params.get("project", "")
    flow.store.mark_orphans()  # a killed deploy's row says "interrupted", not "running"
    earlier = []
    for run in flow.store.list_runs(limit=RUNS_LOOKED_AT):
        params = params_of(run)
        if run.id == flow.run_id or run.kind != "deploy" or run.status == "running":
            continue
        if params.get("target") != target or params.get("project", "") != project:
            continue
        done = flow.store.completed_steps(run.id)
        if "setup" not in done:  # killed in its set-up and not resumed: what it left
            if clear_half_made(flow.repo, setup_slug(target, run.id)):
                flow.emit(Notice(message=f"removed the half-made set-up of deploy {run.id}"))
            continue
        earlier.append((run, (done.get("generate_service") or {}).get("branch") or ""))
    keep = _serving_commits(flow, target)
    newest_green = next((run.branch for run, _ in earlier if run.status == "green"), None)
    removed = []
    for run, service_branch in earlier:
        for branch in (run.branch or "", service_branch):
            if not branch or not ref_exists(flow.repo, f"refs/heads/{branch}"):
                continue
            if branch == run.branch and (
                branch == newest_green or any(_holds(flow.repo, branch, c) for c in keep)
            ):
                _drop_worktree_only(flow.repo, run.worktree)
                continue
            if discard_branch(flow.repo, branch):
                removed.append(branch)
    if removed:
        flow.emit(
            Notice(
                message=f"removed {len(removed)} earlier deploy branch(es): {', '.join(removed)}"
            )
        )
    return removed


def _serving_commits(flow: DeployFlow, target: str) -> set[str]:
    if target != "local":
        return set()
    state = load_state(state_dir_for(flow.repo / flow.params.get("project", "")))
    commits = {instance.release.commit for instance, _ in state.live}
    if state.last_healthy is not None:
        commits.add(state.last_healthy.commit)
    return commits


def _holds(repo: Path, branch: str, commit: str) -> bool:
    done = git(repo, "merge-base", "--is-ancestor", commit, branch, check=False)
    return done.returncode == 0


def _drop_worktree_only(repo: Path, worktree: str | None) -> None:
    """A kept branch needs no worktree (resume re-creates one)."""
    inside = worktree and Path(worktree).resolve().is_relative_to(repo.resolve() / ".council")
    if inside and Path(worktree).is_dir():
        git(repo, "worktree", "remove", "--force", "--force", worktree, check=False)


def superseded(flow: DeployFlow) -> str:
    """Why this resumed deploy cannot go on ('' when it can): a later deploy removed its
    branch."""
    setup = flow.steps.done.get("setup") or {}
    branch = setup.get("branch")
    if branch and not ref_exists(flow.repo, f"refs/heads/{branch}"):
        return (
            f"a later `council deploy` superseded this run and removed its branch {branch}; "
            "start a new deploy"
        )
    return ""
