"""Deploy targets: where a service runs (`local` today), behind one interface (base.Target)."""

from __future__ import annotations

from council.deploy_config import DeployConfig
from council.targets.base import Target, TargetError

TARGETS = ("local",)


def get_target(name: str, **options: object) -> Target:
    """The target called `name`, built with `options` (see each target's constructor)."""
    if name == "local":
        from council.targets.local import LocalTarget

        return LocalTarget(**options)  # type: ignore[arg-type]
    if name == "azure":  # deploy.yaml accepts it: the flow that drives it is still to come
        raise TargetError("the azure target is not built yet", hint="Use target: local.")
    raise TargetError(f"unknown deploy target {name!r}; known: {', '.join(TARGETS)}")


def target_for(config: DeployConfig, **options: object) -> Target:
    """The target deploy.yaml names, with its app and health settings."""
    settings = {
        "app": config.app,
        "health_path": config.health_path,
        "health_timeout_s": config.health_timeout_seconds,
    }
    return get_target(config.resolved_target, **settings, **options)
