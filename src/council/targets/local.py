"""The `local` target: the service as a supervised process on a free loopback port.

Releases run side by side (blue/green): a new one starts next to the live one, which keeps
serving until the new one is healthy; then the old one is stopped. A release that does not
become healthy is rolled back: it is stopped and the last healthy release keeps (or, if it was
stopped, starts again) serving. Each release runs from its own export of the git tree, in the
env the env cache builds for it, with only the environment it is given.

With `detach=True` (what `council deploy` uses) each service runs under a keeper process that
outlives the command, and the target keeps its state in `state_dir/state.json`: a later
command's target finds the live releases and the last healthy one there.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from council.events import EventSink, null_sink
from council.paths import cache_root
from council.targets import release as sources
from council.targets.base import HealthReport, Instance, Release, TargetError, TargetStatus
from council.targets.health import listening_ports, probe
from council.targets.keeper import Kept
from council.targets.local_state import load_state, save_state
from council.targets.serve_env import ServeEnv, prepare_serve_env
from council.targets.supervise import BoundedLog, Supervised, free_port, tail
from council.toolchains.python_env import pythonpath_for

HOST = "127.0.0.1"
KEEP_RELEASES = 5  # exported sources kept for rollback; older ones are removed
# What a service inherits from council's own environment: enough to run, no credentials.
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")


@dataclass
class _Running:
    instance: Instance
    process: Supervised | Kept


class LocalTarget:
    name = "local"

    def __init__(
        self,
        *,
        state_dir: Path | None = None,
        cache_dir: Path | None = None,
        app: str | None = None,
        health_path: str = "/health",
        health_timeout_s: float = 60.0,
        env: dict[str, str] | None = None,
        install_timeout_s: float = 900,
        emit: EventSink = null_sink,
        detach: bool = False,
    ) -> None:
        self.state_dir = state_dir
        self.cache_dir = cache_dir or cache_root()
        self.app = app
        self.health_path = health_path
        self.health_timeout_s = health_timeout_s
        self.env = dict(env or {})
        self.install_timeout_s = install_timeout_s
        self.emit = emit
        self._live: list[_Running] = []
        self._envs: dict[str, ServeEnv] = {}
        self._last_healthy: Release | None = None
        self.detach = detach
        if detach:
            if state_dir is None:
                raise TargetError("a detached local target needs a state folder")
            state = load_state(state_dir)
            self._live = [_Running(instance, kept) for instance, kept in state.live]
            self._last_healthy = state.last_healthy

    def _save(self) -> None:
        if self.detach and self.state_dir is not None:
            live = [(r.instance, r.process) for r in self._live if isinstance(r.process, Kept)]
            save_state(self.state_dir, live, self._last_healthy)

    # --- provision --------------------------------------------------------------------------

    def provision(
        self, root: Path, *, ref: str = "HEAD", env: dict[str, str] | None = None
    ) -> Release:
        root = root.resolve()
        commit, tree = sources.resolve(root, ref)
        state = self.state_dir or cache_root() / "deploy" / _digest(str(root))
        source = sources.export(root, tree, state / "releases" / tree[:12])
        self._prune(source.parent, keep=source)
        release = Release(
            id=tree[:12],
            commit=commit,
            tree=tree,
            source=source,
            app=self.app or sources.detect_app(source),
            health_path=self.health_path,
            env={**self.env, **(env or {})},
        )
        self._env(release)
        return release

    def _prune(self, releases: Path, *, keep: Path) -> None:
        """Drop exported releases beyond the newest KEEP_RELEASES, never a live one or the
        last healthy one (rollback needs its sources)."""
        needed = {keep, *(r.instance.release.source for r in self._live)}
        if self._last_healthy is not None:
            needed.add(self._last_healthy.source)
        exported = sorted(
            (p for p in releases.iterdir() if (p / ".council-release").is_file()),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        for old in exported[KEEP_RELEASES:]:
            if old not in needed:
                shutil.rmtree(old, ignore_errors=True)

    def _env(self, release: Release) -> ServeEnv:
        if release.id not in self._envs:
            self._envs[release.id] = prepare_serve_env(
                release.source,
                cache_dir=self.cache_dir,
                install_timeout_s=self.install_timeout_s,
                emit=self.emit,
            )
        return self._envs[release.id]

    # --- start / health ---------------------------------------------------------------------

    def start(self, release: Release) -> Instance:
        serve = self._env(release)
        port = free_port(HOST)
        logs = release.source.parent.parent / "logs"
        log = BoundedLog(logs / f"{release.id}-{port}.log")
        environ = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
        environ.update(self.env)  # deploy.yaml's, also for a release started again later
        environ.update(release.env)
        environ.update(
            PYTHONPATH=os.pathsep.join(
                str(p) for p in [*pythonpath_for(release.source), *serve.extra_path]
            ),
            PYTHONUNBUFFERED="1",
            COUNCIL_RELEASE=release.id,  # lets anyone find the service's processes
        )
        argv = [str(serve.python), "-m", "uvicorn", release.app, "--host", HOST]
        argv += ["--port", str(port), "--no-access-log"]
        process: Supervised | Kept
        if self.detach:
            try:
                process = Kept.start(argv, cwd=release.source, env=environ, log=log.path)
            except OSError as exc:
                raise TargetError(f"cannot start release {release.id}: {exc}") from None
        else:
            process = Supervised(argv, cwd=release.source, env=environ, log=log)
        instance = Instance(
            release=release,
            pid=process.pid,
            port=port,
            url=f"http://{HOST}:{port}",
            log=log.path,
            started_at=time.time(),
        )
        self._live.append(_Running(instance, process))
        self._save()
        return instance

    def health(self, instance: Instance, *, timeout_s: float | None = None) -> HealthReport:
        running = self._find(instance)
        report = probe(
            instance.url + instance.release.health_path,
            timeout_s=self.health_timeout_s if timeout_s is None else timeout_s,
            exited=running.process.exit_code,
            log_tail=lambda: tail(instance.log, 40),
            hopeless=lambda: _serving_elsewhere(instance),
        )
        if report.healthy:
            self._last_healthy = instance.release
            for other in [r for r in self._live if r is not running]:
                self._stop(other)  # the new release serves: retire the old ones
            self._save()
        return report

    # --- logs / status / rollback / stop ----------------------------------------------------

    def logs(self, instance: Instance, *, lines: int = 200) -> str:
        return tail(instance.log, lines)

    def status(self) -> TargetStatus:
        return TargetStatus(
            target=self.name,
            live=tuple(r.instance for r in self._live),
            running=tuple(r.instance.release.id for r in self._live if r.process.alive()),
            last_healthy=self._last_healthy,
        )

    def rollback(self) -> Instance:
        good = self._last_healthy
        if good is None:
            raise TargetError("nothing to roll back to: no release of this target was healthy")
        keep = next(
            (r for r in self._live if r.instance.release.id == good.id and r.process.alive()),
            None,
        )
        for other in [r for r in self._live if r is not keep]:
            self._stop(other)
        if keep is not None:
            return keep.instance
        instance = self.start(good)
        report = self.health(instance)
        if not report.healthy:
            raise TargetError(
                f"the last healthy release {good.id} did not come back: {report.error}"
            )
        return instance

    def stop(self) -> None:
        for running in list(self._live):
            self._stop(running)

    def _stop(self, running: _Running) -> None:
        running.process.stop()
        self._live.remove(running)
        self._save()

    def _find(self, instance: Instance) -> _Running:
        for running in self._live:
            if running.instance == instance:
                return running
        raise TargetError(f"release {instance.release.id} (pid {instance.pid}) is not running here")


def _serving_elsewhere(instance: Instance) -> str:
    """Why waiting is pointless: the service says it serves only on ports it was not given."""
    ports = listening_ports(tail(instance.log, 40))
    if ports and instance.port not in ports:
        return f"the service listens on port {min(ports)}, not on {instance.port}"
    return ""


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
