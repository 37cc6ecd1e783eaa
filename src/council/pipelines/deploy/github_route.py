"""The azure target's GitHub route: the deploy branch (with the generated workflow and any fix)
is pushed, the deploy workflow is dispatched on it, and the run is waited for through the
GitHub REST API (deploy.yaml's poll interval and time limit). A failed run's job logs are read
and diagnosed like a failed release (known failures first, then DevOps, then Builder's patch
reviewed by Guardian), the fix is committed and pushed, and the workflow runs again, within
max_retries. When it succeeds, the app's URL (deploy.yaml `azure.url`) is health-checked.

Steps: `workflow-N` (push, dispatch, wait, diagnose and fix on failure) and `check_health`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from council.events import DeployLogs, WorkflowPolled
from council.infra.service_artefacts import ServiceSpec
from council.pipelines.deploy.azure import probe_url
from council.pipelines.engine import StepOutput
from council.pipelines.lifecycle import Stop
from council.targets.base import HealthReport, TargetError
from council.targets.github_actions import GitHubActions, WorkflowRun
from council.workspace.github import (
    github_api_url,
    github_token,
    parse_remote,
    push_branch,
    remote_url,
)

if TYPE_CHECKING:
    from council.pipelines.deploy.flow import DeployFlow


def github_route(flow: DeployFlow, spec: ServiceSpec) -> tuple[str, str]:
    assert flow.ws is not None
    settings = flow.deploy.deployment
    gh = settings.github
    repository = gh.repository or "/".join(parse_remote(remote_url(flow.ws, gh.remote)))
    actions = GitHubActions(github_api_url(), repository, github_token())
    try:
        tried: list[dict] = []
        last: StepOutput = {}
        for n in range(1, settings.max_retries + 2):
            last = flow.steps.run(
                f"workflow-{n}",
                lambda done=tried: _attempt(flow, actions, done),
                detail=f"push, {Path(gh.workflow).name} on {repository}",
            )
            if last["conclusion"] in ("success", "dispatched"):
                break
            tried = last["tried"]
            if not last["recovered"] or n > settings.max_retries:
                why = f"workflow run {last['run']} {last['conclusion']}: {last['why']}"
                raise Stop("failed", why)
            delay = settings.retry_delay(n)
            if delay and not flow.steps.is_done(f"workflow-{n + 1}"):
                time.sleep(delay)
    finally:
        actions.close()
    if last["conclusion"] == "dispatched":
        return "green", f"workflow dispatched on {flow.ws.branch} (not waited for)"
    url = flow.deploy.azure.url
    if not url:
        return "green", f"workflow run {last['run']} succeeded (no azure.url to health-check)"
    health = flow.steps.run("check_health", lambda: probe_url(flow, url), detail=url)
    if not health["healthy"]:
        raise Stop("failed", f"the workflow succeeded but {url} is not healthy: {health['error']}")
    return "green", f"workflow run {last['run']} succeeded; {spec.name} is healthy at {url}"


def _attempt(flow: DeployFlow, actions: GitHubActions, tried: list[dict]) -> StepOutput:
    from council.workspace.git import out as git_out

    assert flow.ws is not None
    gh = flow.deploy.deployment.github
    head = git_out(flow.ws.path, "rev-parse", "HEAD")
    push_branch(flow.ws, gh.remote, emit=flow.emit)
    started = time.time()
    try:
        actions.dispatch(Path(gh.workflow).name, flow.ws.branch)
        if not gh.wait_for_completion:
            return {"conclusion": "dispatched", "run": None, "sha": head}
        run = actions.wait(
            flow.ws.branch,
            head,
            after=started,
            poll_s=gh.poll_interval_seconds,
            max_wait_s=gh.max_wait_minutes * 60,
            seen=lambda r: flow.emit(_polled(r)),
        )
    except TargetError as exc:
        raise Stop("failed", exc.message) from None
    out: StepOutput = {"conclusion": run.conclusion, "run": run.id, "url": run.url, "sha": head}
    if run.conclusion == "success":
        return {**out, "detail": f"run {run.id} succeeded"}
    log = ""
    if gh.fetch_logs_on_failure:
        jobs = actions.failed_jobs(run.id)
        log = "\n".join(f"== job {j.name} (failed: {', '.join(j.steps)})\n{j.log}" for j in jobs)
        flow.emit(
            DeployLogs(source=f"workflow run {run.id}", excerpt="\n".join(log.splitlines()[-30:]))
        )
    report = HealthReport(False, run.url, 0, 0.0, error=f"workflow {run.conclusion}", exit_code=1)
    recovery = flow.recover(
        report,
        log,
        flow.project,
        flow.deploy.health_timeout_seconds,
        tried,
        stage="deploy",
        command=f"GitHub workflow {gh.workflow} on {flow.ws.branch}",
    )
    # A fix is a commit on the branch: the next attempt pushes it.
    return {**out, **recovery, "detail": recovery["why"]}


def _polled(run: WorkflowRun) -> WorkflowPolled:
    return WorkflowPolled(
        workflow_run=run.id, status=run.status, conclusion=run.conclusion, url=run.url
    )
