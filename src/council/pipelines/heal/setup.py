"""A heal killed while it sets up (before its first iteration) leaves nothing behind for good.

The heal's branch name is chosen when the run is recorded (`slug` in its params), so a resumed
heal knows which branch, worktree and backup branch its cut-short `setup` step may have made
half-way: it removes them and sets up again under the same name. A heal that is never resumed
is closed "interrupted" (the store's orphan check, or its own interrupt handler), and the next
heal removes what it left. Removed only: a `council/heal-...` branch whose set-up never finished
holds no fix (a fix is made in an iteration, after the set-up).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from council.events import Notice
from council.pipelines.lifecycle import params_of
from council.workspace import discard_branch, slugify
from council.workspace.worktree import BRANCH_PREFIX

if TYPE_CHECKING:
    from council.pipelines.heal.flow import HealFlow

RUNS_LOOKED_AT = 200


def new_slug() -> str:
    """The name of a new heal's branch: `heal-<time>-<microseconds>`."""
    return "heal-" + time.strftime("%Y%m%d-%H%M%S") + f"-{time.time_ns() % 1_000_000:06d}"


def clear_half_made(repo: Path, slug: str) -> bool:
    """Remove the branch, worktree and backup branch a set-up under `slug` may have left."""
    name = slugify(slug)
    branch = BRANCH_PREFIX + name
    folder = repo / ".council" / "worktrees" / name
    removed = discard_branch(repo, branch, leftover=folder)
    return discard_branch(repo, f"{branch}-backup") or removed


def tidy_before_setup(flow: HealFlow, slug: str) -> None:
    """Before a heal sets up: its own half-made attempt (a resume), and those of earlier heals
    killed in their set-up and not resumed since."""
    flow.store.mark_orphans()  # a SIGKILLed heal's row: "interrupted", no longer "running"
    cleared = [flow.run_id] if clear_half_made(flow.repo, slug) else []
    for run in flow.store.list_runs(limit=RUNS_LOOKED_AT):
        earlier = params_of(run).get("slug")
        if run.id == flow.run_id or run.kind != "heal" or run.status == "running" or not earlier:
            continue
        if "setup" not in flow.store.completed_steps(run.id) and clear_half_made(
            flow.repo, earlier
        ):
            cleared.append(run.id)
    if cleared:
        flow.emit(
            Notice(
                message="removed the half-made set-up of heal run(s) killed before their first "
                f"iteration: {', '.join(cleared)}"
            )
        )
