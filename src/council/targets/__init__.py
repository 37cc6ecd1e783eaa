"""Deploy targets: where a service runs (`local` today), behind one interface (base.Target)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from council.deploy_config import DeployConfig
from council.targets.base import Target, TargetError

TARGETS = ("local",)
STATE_FOLDER = Path(".council") / "deploy"


def get_target(name: str, **options: object) -> Target:
    """The target called `name`, built with `options` (see each target's constructor)."""
    if name == "local":
        from council.targets.local import LocalTarget

        return LocalTarget(**options)  # type: ignore[arg-type]
    if name == "azure":  # the azure route is the deploy flow's (pipelines/deploy/azure.py)
        raise TargetError("the azure target has no process to manage here", hint="Use local.")
    raise TargetError(f"unknown deploy target {name!r}; known: {', '.join(TARGETS)}")


def target_for(config: DeployConfig, **options: object) -> Target:
    """The target deploy.yaml names, with its app, health settings and service environment."""
    settings = {
        "app": config.app,
        "health_path": config.health_path,
        "health_timeout_s": config.health_timeout_seconds,
        "env": config.service_env(os.environ),
    }
    return get_target(config.resolved_target, **{**settings, **options})


def state_dir_for(project: Path, target: str = "local") -> Path:
    """Where a project's deploy state lives: `<repository>/.council/deploy/<target>[-<folder>]`
    (a monorepo's services each have their own)."""
    from council.targets.release import _git

    top = Path(_git(project, "rev-parse", "--show-toplevel"))
    prefix = _git(project, "rev-parse", "--show-prefix").strip("/")
    name = target + (f"-{re.sub(r'[^A-Za-z0-9_.-]+', '-', prefix)}" if prefix else "")
    return top / STATE_FOLDER / name
