"""Deploy targets: where a service runs (`local` today), behind one interface (base.Target)."""

from __future__ import annotations

from council.targets.base import Target, TargetError

TARGETS = ("local",)


def get_target(name: str, **options: object) -> Target:
    """The target called `name`, built with `options` (see each target's constructor)."""
    if name == "local":
        from council.targets.local import LocalTarget

        return LocalTarget(**options)  # type: ignore[arg-type]
    raise TargetError(f"unknown deploy target {name!r}; known: {', '.join(TARGETS)}")
