"""`council deploy`: take the project's service to a running, healthy release, and recover when
it is not (seed 003 steps 4-9 on the shared run lifecycle).

Steps (each a resume point):
- `setup`: a branch and worktree, `council/deploy-<target>-<run>`: every change a deploy makes (the
  generated artefacts, a fix) is a commit there; the user's checkout is never touched. What
  earlier deploys left is tidied first (tidy.py: the branch of what serves is kept).
- `build_container`: the Dockerfile, CI workflow and IaC, generated where the project has none,
  checked offline (pipelines/deploy/artefacts.py).
- `attempt-N` (N = 1 .. max_retries + 1): release the worktree's HEAD to the target, start it
  beside the live release, probe its health. When it is not healthy: its logs, the failed
  release retired (the last healthy one keeps serving), a diagnosis (the known failures first,
  then DevOps), and a fix (a deterministic recovery, or Builder's patch reviewed by Guardian,
  committed on the branch); then the next attempt after deploy.yaml's backoff.
When the attempts are used up, or a failure has no fix, the run stops "failed" with the last
healthy release still serving. The azure target is the `azure` route (pipelines/deploy/azure.py).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from council.config import CouncilConfig
from council.deploy_config import DEPLOY_FILE, DeployConfig, load_deploy_config
from council.errors import UsageError
from council.events import (
    ArtefactsChecked,
    DeployLogs,
    DeployRecovery,
    Notice,
    RolledBack,
    ServiceStarted,
)
from council.infra.service_artefacts import service_spec
from council.pipelines.deploy import artefacts, fix
from council.pipelines.deploy.facts import health_checked, known_diagnosis, model_diagnosis
from council.pipelines.deploy.known import KnownFailure, classify_failure, longer_timeout
from council.pipelines.deploy.service_layer import generate_service, has_service
from council.pipelines.deploy.tidy import (
    clear_half_made,
    setup_slug,
    superseded,
    tidy_earlier_deploys,
)
from council.pipelines.engine import StepOutput
from council.pipelines.lifecycle import Flow, Stop
from council.recovery import add_python_dependency
from council.targets import state_dir_for, target_for
from council.targets.base import HealthReport, Target, TargetError
from council.workspace import conventional_message
from council.workspace.git import out as git_out

LOG_LINES = 80
TARGETS = ("local", "azure")


class DeployFlow(Flow):
    kind = "deploy"

    @classmethod
    def check(
        cls, repo: Path, config: CouncilConfig, feature: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        project = (repo / params.get("project", "")).resolve()
        if not project.is_relative_to(repo.resolve()) or not project.is_dir():
            raise UsageError(f"{params.get('project')!r} is not a folder of the repository")
        deploy = load_deploy_config(project / DEPLOY_FILE)  # a bad deploy.yaml: exit 2, now
        target = params.get("target") or deploy.resolved_target
        if target not in TARGETS:
            raise UsageError(f"unknown deploy target {target!r}; known: {', '.join(TARGETS)}")
        if target == "local" and params.get("dry_run"):  # never deploy what was to be shown
            raise UsageError(
                "--dry-run is for --target azure: the local target has nothing to preview",
                hint="Run `council deploy --target local` (it only runs on this machine; "
                "`council deploy stop` ends it), or `--target azure --dry-run`.",
            )
        if target == "azure" and not params.get("dry_run"):
            _check_azure_route(project, deploy)  # not signed in, no token: refused now, exit 2
        return {**params, "target": target}

    # --- the steps --------------------------------------------------------------------------

    def flow(self) -> tuple[str, str]:
        target = self.params["target"]
        user_project = self.repo / self.params.get("project", "")
        self.deploy: DeployConfig = load_deploy_config(user_project / DEPLOY_FILE)
        slug = setup_slug(target, self.run_id)
        if not self.steps.is_done("setup"):
            clear_half_made(self.repo, slug)  # this run's own set-up, if a kill cut it short
            tidy_earlier_deploys(self)  # 50 deploys leave 1-2 branches, not 50 (tidy.py)
        elif why := superseded(self):
            raise Stop("failed", why)
        if idle := self.deploy.without_effect():
            self.emit(
                Notice(
                    level="warning",
                    message=f"deploy.yaml: {', '.join(idle)}: no effect in this version",
                )
            )
        service = None
        if self.steps.is_done("generate_service") or (
            not self.deploy.skips("generate_service")
            and self.deploy.app is None
            and not has_service(user_project)
        ):
            service = self.steps.run(
                "generate_service",
                lambda: generate_service(self),
                persona="builder",
                detail="TDD run: FastAPI service layer and its HTTP tests",
            )
        # A name of its own per run: a later deploy's branch never takes a removed one's name,
        # so a superseded run is told apart from the branch that replaced it.
        self.setup_worktree(slug)
        assert self.ws is not None
        if service is not None:  # the deploy goes on from the service layer's commits
            git_out(self.ws.path, "merge", "--ff-only", "--quiet", service["branch"])
        self.project = self.ws.path / self.params.get("project", "")
        self.deploy = load_deploy_config(self.project / DEPLOY_FILE)
        if not self.deploy.skips("build_container"):
            self.steps.run(
                "build_container",
                self._artefacts,
                persona="devops",
                detail="Dockerfile, CI workflow, IaC",
            )
        if target == "azure":
            from council.pipelines.deploy.azure import azure_route

            return azure_route(self)
        return self._local()

    def _artefacts(self) -> StepOutput:
        try:
            spec = service_spec(self.project, self.deploy)
        except TargetError as exc:
            raise Stop(
                "failed",
                f"{exc.message}: the project has no HTTP service to deploy",
            ) from None
        written, kept, files = artefacts.generate(self.project, spec)
        checks = artefacts.check(self.project, spec, files)
        self.emit(ArtefactsChecked(written=written, kept=kept, checks=checks))
        bad = artefacts.findings(checks)
        ours = [v for v in bad if any(Path(w).name in v for w in written)]
        if ours:  # the templates' own output must pass: a bug to report, not to deploy
            raise Stop("failed", f"a generated artefact fails its checks: {ours[0]}")
        sha = ""
        if written:
            body = "Generated by council deploy from its templates: " + ", ".join(written)
            sha = self.commit(conventional_message("chore", "deploy", "deployment artefacts", body))
        detail = f"{len(written)} written, {len(kept)} kept, {len(bad)} finding(s)"
        return {"written": written, "kept": kept, "findings": bad, "commit": sha, "detail": detail}

    def _local(self) -> tuple[str, str]:
        settings = self.deploy.deployment
        target = self._target()
        timeout = self.deploy.health_timeout_seconds
        tried: list[dict[str, Any]] = []
        last: StepOutput = {}
        for n in range(1, settings.max_retries + 2):
            step = f"attempt-{n}"
            last = self.steps.run(
                step,
                lambda t=timeout, done=tried: self._attempt(target, t, done),
                detail="release, health",
            )
            if last["healthy"]:
                return "green", f"release {last['release']} is healthy at {last['url']}"
            timeout, tried = last["health_timeout"], last["tried"]
            if not last["recovered"] or n > settings.max_retries:
                break
            delay = settings.retry_delay(n)
            if delay and not self.steps.is_done(f"attempt-{n + 1}"):
                time.sleep(delay)
        status = target.status()  # the failed release was retired in its attempt
        serving = status.last_healthy.id if status.last_healthy else ""
        where = f"; release {serving} still serves" if serving in status.running else ""
        raise Stop("failed", f"{last.get('why', 'not healthy')}{where}")

    def _target(self) -> Target:
        user_project = self.repo / self.params.get("project", "")
        return target_for(
            self.deploy, state_dir=state_dir_for(user_project), detach=True, emit=self.emit
        )

    def _attempt(self, target: Target, timeout: float, tried: list[dict[str, Any]]) -> StepOutput:
        release = target.provision(self.project)
        instance = target.start(release)
        self.emit(
            ServiceStarted(
                target=target.name,
                release=release.id,
                commit=release.commit,
                url=instance.url,
                pid=instance.pid,
            )
        )
        report = target.health(instance, timeout_s=timeout)
        self.emit(health_checked(report))
        out: StepOutput = {"release": release.id, "url": instance.url, "health_timeout": timeout}
        if report.healthy:
            return {**out, "healthy": True, "detail": f"healthy at {instance.url}"}
        log = target.logs(instance, lines=LOG_LINES)
        self.emit(
            DeployLogs(source=f"service {release.id}", excerpt="\n".join(log.splitlines()[-30:]))
        )
        self._retire(target, f"release {release.id} is not healthy: {report.error}")
        recovery = self.recover(report, log, release.source, timeout, tried, port=instance.port)
        return {**out, "healthy": False, **recovery, "detail": recovery["why"]}

    def _retire(self, target: Target, reason: str) -> str:
        """Stop the failed release; the last healthy one serves (the id, or '')."""
        try:
            instance = target.rollback()
        except TargetError:
            target.stop()
            self.emit(RolledBack(reason=reason))
            return ""
        self.emit(RolledBack(release=instance.release.id, url=instance.url, reason=reason))
        return instance.release.id

    # --- diagnosis and recovery --------------------------------------------------------------

    def recover(
        self,
        report: HealthReport,
        log: str,
        source: Path,
        timeout: float,
        tried: list[dict[str, Any]],
        *,
        stage: str = "health",
        command: str = "",
        port: int | None = None,
    ) -> dict[str, Any]:
        """What was diagnosed and done: recovered (worth another attempt), why, tried so far.
        `source`: where the failing code ran (a release's export, or the worktree)."""
        known = classify_failure(report, log, project=self.project, port=port)
        done_before = {t.get("id") for t in tried}
        if known and known.recovery and known.id not in done_before:
            return self._deterministic(known, timeout, tried)
        if known is not None:  # named, but only a code or configuration change fixes it
            self.emit(known_diagnosis(known))
        why = known.cause if known else report.error
        if self.deploy.skips("analyze_errors"):
            return {"recovered": False, "why": why, "tried": tried, "health_timeout": timeout}
        assert self.ws is not None
        facts = {
            "service": self.project.name,
            "target": self.params["target"],
            "stage": stage,
            "command": command
            or f"uvicorn {self._app()} (health check on {self.deploy.health_path})",
            "log": log,
            "files": fix.relevant_files(
                log, source=source, top=self.ws.path, project=self.project, app=self._app()
            ),
            "previous": [t["summary"] for t in tried],
        }
        diagnosis = fix.diagnose(self, facts)
        self.emit(model_diagnosis(diagnosis))
        entry = {
            "id": f"model:{diagnosis.category}",
            "summary": f"{diagnosis.cause} ({diagnosis.fix})",
        }
        tried = [*tried, entry]
        if diagnosis.category == "transient" and diagnosis.retry:
            self.emit(DeployRecovery(action="retry", detail=diagnosis.cause, applied=True))
            return {
                "recovered": True,
                "why": diagnosis.cause,
                "tried": tried,
                "health_timeout": timeout,
            }
        if self.deploy.skips("apply_fix"):
            return {
                "recovered": False,
                "why": diagnosis.cause,
                "tried": tried,
                "health_timeout": timeout,
            }
        outcome = fix.patch(self, self.ws.path, diagnosis, facts)
        detail = ", ".join(outcome.files) if outcome.applied else "; ".join(outcome.reasons)[:300]
        self.emit(DeployRecovery(action="model_patch", detail=detail, applied=outcome.applied))
        if outcome.applied:
            subject = f"make the service start: {diagnosis.cause}"[:72].rstrip(" .")
            body = f"DevOps: {diagnosis.cause}\nFix: {diagnosis.fix}"
            self.commit(conventional_message("fix", "deploy", subject, body))
        return {
            "recovered": outcome.applied,
            "why": diagnosis.cause,
            "tried": tried,
            "health_timeout": timeout,
        }

    def _deterministic(
        self, known: KnownFailure, timeout: float, tried: list[dict[str, Any]]
    ) -> dict[str, Any]:
        self.emit(known_diagnosis(known))
        applied, detail = True, ""
        if known.recovery == "add_dependency":
            dist = known.payload["distribution"]
            result = add_python_dependency(self.project, dist)
            applied, detail = result.applied, result.description
            if applied:
                self.commit(
                    conventional_message(
                        "fix",
                        "deploy",
                        f"declare {dist}",
                        f"The service imports {known.payload['module']}.",
                    )
                )
        elif known.recovery == "longer_health_timeout":
            timeout = longer_timeout(timeout)
            detail = f"health timeout now {timeout:g}s"
        self.emit(DeployRecovery(action=known.recovery, detail=detail, applied=applied))
        entry = {"id": known.id, "summary": f"{known.cause} ({known.recovery}: {detail})"}
        return {
            "recovered": applied,
            "why": known.cause,
            "tried": [*tried, entry],
            "health_timeout": timeout,
        }

    def _app(self) -> str:
        from council.targets.release import detect_app

        return self.deploy.app or detect_app(self.project)

    def details(self) -> dict[str, Any]:
        done = [out for name, out in self.steps.done.items() if name.startswith("attempt-")]
        healthy = [out for out in done if out.get("healthy")]
        return {"target": self.params.get("target"), "url": healthy[-1]["url"] if healthy else ""}


def _check_azure_route(project: Path, deploy: DeployConfig) -> None:
    if deploy.azure.route == "az":
        from council.pipelines.deploy.azure import require_az

        if deploy.skips("provision") and not deploy.azure.url:
            raise UsageError(
                "deploy.yaml skips provisioning (skip_provision / skip_steps: provision), so "
                "azure.url must say where the app already runs",
                hint="Set azure.url: https://<app>.azurecontainerapps.io, or provision.",
            )

        require_az()
        if deploy.iac == "terraform" and shutil.which("terraform") is None:
            raise UsageError(
                "iac: terraform needs terraform, which is not installed",
                hint="Install it, set iac: bicep, or use `--dry-run`.",
            )
        return
    from council.workspace.github import github_token

    github_token()  # the GitHub route pushes and dispatches the workflow
