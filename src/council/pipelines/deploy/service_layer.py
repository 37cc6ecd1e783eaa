"""The deploy flow's `generate_service` step (seed 003 step 3): a project with domain code but
no HTTP service gets one through the TDD engine itself. A `run` of the council is started with
the request below: Guardian writes the HTTP tests first (they must fail: the service does not
exist), Builder writes the FastAPI layer until they pass, the tests are frozen, Guardian reviews,
and the run commits on its own branch. The deploy then continues from that branch.

The run is a run of its own in the store (`council show <id>` shows it); the deploy records its
id and branch, and echoes its progress as notices.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from council.events import BaseEvent, CommitMade, Emitter, Notice, RunFinished, TestsReported
from council.pipelines.engine import StepOutput
from council.pipelines.lifecycle import Stop
from council.targets.base import TargetError
from council.targets.release import detect_app

if TYPE_CHECKING:
    from council.pipelines.deploy.flow import DeployFlow

SERVICE_FEATURE = (
    "Add an HTTP service layer over this project's domain code, changing the domain code as "
    "little as possible: a FastAPI application (`app = FastAPI()`) in a new module of the "
    'project\'s package, with GET {health} answering 200 and {{"status": "ok"}}, and one '
    "JSON route for each public function of the domain code (404 for a missing item, 422 for "
    "bad input). Its tests call the routes over HTTP with fastapi.testclient.TestClient."
)


def has_service(project: Path) -> bool:
    try:
        detect_app(project)
    except TargetError:
        return False
    return True


def generate_service(flow: DeployFlow) -> StepOutput:
    if flow.params.get("project"):
        raise Stop(
            "failed",
            "the project has no HTTP service, and a service layer is generated only for a "
            "project at the repository's top level",
        )
    from council.pipelines.flows import start_flow  # the registry imports this flow lazily

    echo = Emitter()
    echo.subscribe(lambda event: _echo(flow, event))
    feature = SERVICE_FEATURE.format(health=flow.deploy.health_path)
    run = start_flow(
        "run", repo=flow.repo, feature=feature, config=flow.config, store=flow.store, emit=echo
    )
    flow.emit(Notice(message=f"service layer: council run {run.run_id} (TDD: red, green, frozen)"))
    outcome = run.execute()
    if outcome.status != "green":
        raise Stop(
            "failed",
            f"the service layer run {outcome.run_id} ended {outcome.status}: {outcome.reason}",
        )
    return {
        "run_id": outcome.run_id,
        "branch": outcome.branch,
        "commits": outcome.commits,
        "detail": f"run {outcome.run_id} green on {outcome.branch}",
    }


def _echo(flow: DeployFlow, event: BaseEvent) -> None:
    """A line of the service-layer run's progress in the deploy's own record."""
    if isinstance(event, TestsReported):
        counts = f"{event.passed} passed, {event.failed} failed, {event.errors} errors"
        line = f"tests {event.phase}: {counts}"
    elif isinstance(event, CommitMade):
        line = f"commit {event.sha[:10]} {event.message.splitlines()[0]}"
    elif isinstance(event, RunFinished):
        line = f"{event.status}: {event.reason}"
    else:
        return
    flow.emit(Notice(message=f"service layer: {line}"))
