"""The FastAPI application of `council serve`: the REST API, the runs' event streams (SSE),
the dashboard and /metrics, over one store and one queue.

Auth: with no active API key the server is open (it binds loopback only; `council serve`
refuses another address then); once a key exists, every request needs one
(`Authorization: Bearer ck_...`, or the dashboard's cookie), and a key sees only runs of its
repositories (another repository's run is "not found", so its existence does not leak).
"""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from council.errors import CouncilError
from council.events import RunFinished
from council.queue.jobs import JobQueue
from council.queue.submit import Submission, check_text, repo_key, submit
from council.server import queries
from council.server.keys import ApiKey, KeyStore
from council.server.metrics import registry_for
from council.server.ratelimit import RateLimiter
from council.server.schemas import (
    Health,
    Problem,
    RunDetail,
    RunOut,
    StepOut,
    SubmitRequest,
    UsageOut,
)
from council.store import Store

RunStatus = Literal[
    "queued", "running", "green", "failed", "error", "stopped", "interrupted", "cancelled"
]

# One event of the stream as a client parses it (`id`, `event`, `data` lines); `data` is JSON
# text: the event as `council run --json` prints it, or {"status": ...} for the last, `end`.
SSE_EVENT_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "event": {"type": "string"},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
    "required": ["event", "data"],
}
SSE_POLL_S = 0.25
SSE_KEEPALIVE_S = 15.0
KEY_COOKIE = "council_key"


@dataclass
class ServerState:
    store: Store
    data_dir: Path
    workers: int = 0
    # Called with a run id once it is queued (or re-queued): wakes the pool or sends the task.
    dispatch: Callable[[str], None] = lambda _run_id: None
    keys: KeyStore = field(init=False)
    queue: JobQueue = field(init=False)
    limiter: RateLimiter = field(default_factory=RateLimiter)

    def __post_init__(self) -> None:
        self.keys = KeyStore(self.store)
        self.queue = JobQueue(self.store)


@dataclass
class Caller:
    key: ApiKey | None  # None: an open server (no keys exist)

    def sees(self, repo: str) -> bool:
        return self.key is None or self.key.allows(repo)


def _state(request: Request) -> ServerState:
    return request.app.state.council


def _token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(KEY_COOKIE, "")


def caller(request: Request) -> Caller:
    state = _state(request)
    token = _token(request)
    if not token:
        if state.keys.any_active():
            raise HTTPException(
                401, "an API key is required", headers={"WWW-Authenticate": "Bearer"}
            )
        return Caller(None)
    key = state.keys.authenticate(token)
    if key is None:
        raise HTTPException(
            401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"}
        )
    wait = state.limiter.take(key.id, key.rate_per_minute)
    if wait > 0:
        raise HTTPException(
            429, "rate limit of this key reached", headers={"Retry-After": str(int(wait) + 1)}
        )
    return Caller(key)


CallerDep = Annotated[Caller, Depends(caller)]
StateDep = Annotated[ServerState, Depends(_state)]
_ERRORS = {
    401: {"model": Problem, "description": "no, unknown or revoked API key"},
    429: {"model": Problem, "description": "the key's rate limit is reached"},
}
_NOT_FOUND = {404: {"model": Problem, "description": "no such run (for this key)"}}


def _out(row: queries.RunRow) -> RunOut:
    return RunOut(
        **{k: getattr(row, k) for k in RunOut.model_fields if k != "duration_s"},
        duration_s=row.duration_s,
    )


def _visible_run(state: ServerState, who: Caller, run_id: str) -> queries.RunRow:
    row = queries.get_run(state.store, run_id, who.sees)
    if row is None:
        raise HTTPException(404, f"no run {run_id}")
    return row


def create_app(state: ServerState) -> FastAPI:
    app = FastAPI(
        title="AI Council",
        version="1",
        description="Submit council runs, follow their events, cancel and resume them.",
    )
    app.state.council = state

    @app.exception_handler(CouncilError)
    async def _council_error(_request: Request, exc: CouncilError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(405)
    async def _method_not_allowed(request: Request, exc: Exception) -> JSONResponse:
        # Starlette names only the first route of a path; a path served by several routes
        # (GET and POST /api/runs) allows all their methods.
        allowed = sorted(
            {
                method
                for route in app.router.routes
                if getattr(route, "path_regex", None) is not None
                and route.path_regex.match(request.url.path)
                for method in getattr(route, "methods", None) or ()
            }
        )
        return JSONResponse(
            {"detail": "Method Not Allowed"},
            status_code=405,
            headers={"Allow": ", ".join(allowed)},
        )

    @app.get("/api/health", response_model=Health, tags=["server"])
    def health(st: StateDep) -> Health:
        depth = st.queue.depth()
        return Health(queued=depth["queued"], running=depth["running"], workers=st.workers)

    @app.post(
        "/api/runs",
        response_model=RunOut,
        status_code=201,
        tags=["runs"],
        responses={
            400: {"model": Problem, "description": "refused request"},
            403: {"model": Problem, "description": "this key may not use that repository"},
            **_ERRORS,
        },
    )
    def submit_run(body: SubmitRequest, who: CallerDep, st: StateDep) -> RunOut:
        """Queue a run (`council run`, with `tests` the tests-given mode) or a heal."""
        wanted = Submission(**body.model_dump())
        check_text(wanted)  # before the repository is looked at
        if not who.sees(repo_key(body.repo)):
            raise HTTPException(403, "this key may not use that repository")
        run_id = submit(
            st.store,
            wanted,
            repos_dir=st.data_dir / "repos",
            key_id=who.key.id if who.key else None,
        )
        st.dispatch(run_id)
        return _out(_visible_run(st, who, run_id))

    @app.get("/api/runs", response_model=list[RunOut], tags=["runs"], responses=_ERRORS)
    def list_runs(
        who: CallerDep,
        st: StateDep,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        status: Annotated[RunStatus | None, Query()] = None,
    ) -> list[RunOut]:
        """The most recent runs this key may see, newest first."""
        return [_out(r) for r in queries.list_runs(st.store, who.sees, limit=limit, status=status)]

    @app.get(
        "/api/runs/{run_id}",
        response_model=RunDetail,
        tags=["runs"],
        responses={**_ERRORS, **_NOT_FOUND},
    )
    def show_run(run_id: str, who: CallerDep, st: StateDep) -> RunDetail:
        """A run with its steps and its model usage."""
        row = _visible_run(st, who, run_id)
        summary = st.store.summary(run_id).total
        steps = [
            StepOut(
                name=s.name, status=s.status, started_at=s.started_at, finished_at=s.finished_at
            )
            for s in st.store.steps(run_id)
        ]
        return RunDetail(
            **_out(row).model_dump(),
            steps=steps,
            usage=UsageOut(
                model_calls=summary.model_calls,
                prompt_tokens=summary.prompt_tokens,
                completion_tokens=summary.completion_tokens,
                cost_usd=summary.cost_usd,
            ),
            events=queries.event_count(st.store, run_id),
        )

    @app.post(
        "/api/runs/{run_id}/cancel",
        response_model=RunOut,
        status_code=202,
        tags=["runs"],
        responses={
            409: {"model": Problem, "description": "the run is already finished"},
            **_ERRORS,
            **_NOT_FOUND,
        },
    )
    def cancel_run(run_id: str, who: CallerDep, st: StateDep) -> RunOut:
        """Cancel a queued run at once, or stop a running one (its processes are killed)."""
        row = _visible_run(st, who, run_id)
        outcome = st.queue.request_cancel(run_id)
        if outcome == "finished":
            raise HTTPException(409, f"run {run_id} is already finished ({row.status})")
        if outcome == "cancelled":
            st.store.record_event(
                RunFinished(run_id=run_id, status="cancelled", reason="cancelled before it started")
            )
        return _out(_visible_run(st, who, run_id))

    @app.post(
        "/api/runs/{run_id}/resume",
        response_model=RunOut,
        status_code=202,
        tags=["runs"],
        responses={
            400: {"model": Problem, "description": "not resumable"},
            **_ERRORS,
            **_NOT_FOUND,
        },
    )
    def resume_run(run_id: str, who: CallerDep, st: StateDep) -> RunOut:
        """Queue an unfinished run again; it goes on from its last finished step."""
        _visible_run(st, who, run_id)
        st.queue.resubmit(run_id)
        st.dispatch(run_id)
        return _out(_visible_run(st, who, run_id))

    @app.get(
        "/api/runs/{run_id}/events",
        tags=["runs"],
        response_class=StreamingResponse,
        responses={
            200: {
                "description": "Server-Sent Events: `id` is the event's sequence number, "
                "`event` its kind, `data` its JSON; a last `end` event carries the run's status. "
                "Reconnect with Last-Event-ID (or ?after=N) to get only later events.",
                "content": {"text/event-stream": {"schema": SSE_EVENT_SCHEMA}},
            },
            **_ERRORS,
            **_NOT_FOUND,
        },
    )
    async def run_events(
        run_id: str,
        request: Request,
        who: CallerDep,
        st: StateDep,
        after: Annotated[int | None, Query(ge=0)] = None,
    ) -> StreamingResponse:
        """The run's event stream, live: every stored event once, in order, then `end`."""
        await run_in_threadpool(_visible_run, st, who, run_id)
        last = after
        if last is None:
            header = request.headers.get("last-event-id", "0")
            last = int(header) if header.isdigit() else 0
        return StreamingResponse(
            _sse(st.store, run_id, last, request),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    metrics = registry_for(state.store)

    @app.get("/metrics", tags=["server"], response_class=PlainTextResponse, responses=_ERRORS)
    def prometheus_metrics(who: CallerDep) -> PlainTextResponse:
        """Prometheus text format: runs by status, queue depth, model calls, errors, tokens,
        cost, model latency and step duration."""
        return PlainTextResponse(generate_latest(metrics), media_type=CONTENT_TYPE_LATEST)

    from council.server.dashboard import add_dashboard

    add_dashboard(app, caller, KEY_COOKIE)
    return app


async def _sse(store: Store, run_id: str, last: int, request: Request) -> AsyncIterator[bytes]:
    idle = 0.0
    while True:
        # Status first: a run that was finished before this read has all its events stored.
        # A run is over when its job is: an "interrupted" run whose worker died is queued again.
        job_status, status = await run_in_threadpool(queries.job_status, store, run_id)
        batch = await run_in_threadpool(queries.events_after, store, run_id, last)
        for seq, kind, payload in batch:
            last = seq
            yield f"id: {seq}\nevent: {kind}\ndata: {json.dumps(payload)}\n\n".encode()
        if batch:
            idle = 0.0
            continue
        if job_status in ("done", "cancelled"):
            yield f"event: end\ndata: {json.dumps({'status': status})}\n\n".encode()
            return
        with contextlib.suppress(Exception):
            if await request.is_disconnected():
                return
        await asyncio.sleep(SSE_POLL_S)
        idle += SSE_POLL_S
        if idle >= SSE_KEEPALIVE_S:
            idle = 0.0
            yield b": keep-alive\n\n"
