"""What every deploy target does (provision, start, health, logs, rollback, status, stop) and
the plain records it hands back. Persistence is the caller's: the run lifecycle records them as
events; a target keeps only what it needs to roll back while it lives."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from council.errors import CouncilError


class TargetError(CouncilError):
    """A target cannot do what it was asked (no source at that commit, nothing to roll back to,
    the service cannot be started)."""


@dataclass(frozen=True)
class Release:
    """One version of the service, named by the git commit and tree it was built from."""

    id: str  # short tree hash: the same sources are the same release
    commit: str
    tree: str
    source: Path  # the release's own copy of the sources (never the user's checkout)
    app: str  # what the server runs, e.g. "app.main:app"
    health_path: str = "/health"
    # Extra environment for the service; may hold secrets, so it stays out of repr (and logs).
    env: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Instance:
    """A started release: where it answers, which process serves it, where its logs go."""

    release: Release
    pid: int
    port: int
    url: str
    log: Path
    started_at: float


@dataclass(frozen=True)
class HealthReport:
    healthy: bool
    url: str
    attempts: int
    elapsed_s: float
    status_code: int | None = None
    error: str = ""  # the last probe's failure, in words
    exit_code: int | None = None  # the service exited while being probed
    log_tail: str = ""  # the end of its log when unhealthy: what a diagnosis reads first


@dataclass(frozen=True)
class TargetStatus:
    target: str
    live: tuple[Instance, ...]  # started and not stopped (may have exited since)
    running: tuple[str, ...]  # ids of live releases whose process is still there
    last_healthy: Release | None


@runtime_checkable
class Target(Protocol):
    """A place a service runs. `local` is real today; `azure` comes with the deploy flow."""

    name: str

    def provision(self, root: Path, *, ref: str = "HEAD") -> Release:
        """Make a release of `root` at `ref` ready to start (sources, environment)."""
        ...

    def start(self, release: Release) -> Instance:
        """Start the release next to the live one (which keeps serving until this is healthy)."""
        ...

    def health(self, instance: Instance, *, timeout_s: float | None = None) -> HealthReport:
        """Probe with backoff (timeout: the target's default); a healthy release becomes the
        one to roll back to."""
        ...

    def logs(self, instance: Instance, *, lines: int = 200) -> str: ...

    def rollback(self) -> Instance:
        """Stop every release but the last healthy one, and make sure that one serves."""
        ...

    def status(self) -> TargetStatus: ...

    def stop(self) -> None:
        """Stop everything this target started, leaving no process behind."""
        ...
