"""The store: persists the event stream and the run/step state that `show` and `resume` read.

Every write commits at once, so a process killed mid-run leaves every event and completed step
behind. Model exchanges, commands and the runs / steps rows are derived from the events by the
same `record_event` call: there is no second, private record of them, and no other writer.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.exc import IntegrityError

from council.errors import UsageError
from council.events import (
    TRANSIENT_KINDS,
    BaseEvent,
    CommandRun,
    ModelCall,
    RunClaimed,
    RunFinished,
    RunStarted,
    StepFinished,
    StepStarted,
    event_from_json,
)
from council.processes import pid_alive
from council.redact import redact
from council.redact import redact_tree as _redact_tree
from council.store import schema
from council.store.audit import append_entry, entries_for
from council.store.engine import WRITE, make_engine
from council.store.migrate import upgrade
from council.store.records import (
    CommandRecord,
    ExchangeRecord,
    FixRecord,
    RunRecord,
    RunSummary,
    StepRecord,
    UsageTotals,
)

DB_RELATIVE_PATH = Path(".council") / "council.db"

_UPDATABLE_RUN_FIELDS = frozenset(
    {"branch", "worktree", "status", "reason", "total_cost_usd", "state", "pid", "host"}
)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def new_run_id(now: float | None = None) -> str:
    """A short, sortable, readable run id: r-<yyyymmdd>-<6 hex>."""
    day = datetime.fromtimestamp(time.time() if now is None else now, tz=UTC).strftime("%Y%m%d")
    return f"r-{day}-{secrets.token_hex(3)}"


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class Store:
    """Runs, steps, events, model exchanges and commands in one SQL database (SQLite by default)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine = make_engine(url)
        upgrade(self._engine)

    @classmethod
    def for_repo(cls, repo: Path) -> Store:
        """The repository's own store: SQLite at <repo>/.council/council.db."""
        path = Path(repo).resolve() / DB_RELATIVE_PATH
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{path}")

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One committed write transaction, holding the write lock from its first statement."""
        with self._engine.connect() as conn:
            conn.execution_options(**{WRITE: True})
            with conn.begin():
                yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._engine.connect() as conn:
            yield conn

    # The server's own tables (jobs, api_keys: queue/, server/) are read and written through
    # these, with the same locking rules as the store's own writes.
    def write_transaction(self) -> contextlib.AbstractContextManager[Connection]:
        return self._write()

    def read_connection(self) -> contextlib.AbstractContextManager[Connection]:
        return self._read()

    # -- runs --------------------------------------------------------------------------------

    def create_run(
        self, *, feature: str, repo: str, config: dict[str, Any], kind: str = "run"
    ) -> str:
        """Record a new run (status "running") and return its id; `kind` is run or heal."""
        if kind not in schema.RUN_KINDS:
            raise ValueError(f"invalid run kind {kind!r}")
        now = time.time()
        row = {
            "kind": kind,
            "created_at": now,
            "feature": redact(feature),
            "repo": str(repo),
            "branch": None,
            "worktree": None,
            "status": "running",
            "reason": "",
            "total_cost_usd": 0.0,
            "config": _dumps(_redact_tree(config)),
            "state": _dumps({}),
            "pid": os.getpid(),
            "host": socket.gethostname(),
        }
        for _attempt in range(20):
            run_id = new_run_id(now)
            try:
                with self._write() as conn:
                    conn.execute(schema.runs.insert().values(id=run_id, **row))
                return run_id
            except IntegrityError:
                continue  # same id drawn twice in a day: draw again
        raise RuntimeError("could not allocate a unique run id")

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set branch, worktree, status, reason, total_cost_usd and/or state of a run.

        For repairs and test fixtures only: a flow never writes its run row; the row is the
        projection of the run's events (see `record_event`)."""
        unknown = set(fields) - _UPDATABLE_RUN_FIELDS
        if unknown:
            raise TypeError(f"update_run got unknown fields: {', '.join(sorted(unknown))}")
        if "status" in fields and fields["status"] not in schema.RUN_STATUSES:
            raise ValueError(f"invalid run status {fields['status']!r}")
        values = dict(fields)
        if "state" in values:
            values["state"] = _dumps(_redact_tree(values["state"] or {}))
        if "reason" in values:
            values["reason"] = redact(values["reason"] or "")
        if "total_cost_usd" in values:
            values["total_cost_usd"] = float(values["total_cost_usd"])
        if not values:
            return
        with self._write() as conn:
            result = conn.execute(
                schema.runs.update().where(schema.runs.c.id == run_id).values(**values)
            )
        if result.rowcount == 0:
            raise UsageError(f"unknown run id {run_id!r}")

    def get_run(self, run_id: str) -> RunRecord | None:
        """The run with this id, or with this unique id prefix; None when nothing matches."""
        runs = schema.runs
        with self._read() as conn:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
            if row is None and run_id:
                pattern = _escape_like(run_id) + "%"
                rows = conn.execute(
                    select(runs).where(runs.c.id.like(pattern, escape="\\")).limit(2)
                ).all()
                if len(rows) > 1:
                    raise UsageError(
                        f"run id prefix {run_id!r} is ambiguous", hint="give more characters"
                    )
                row = rows[0] if rows else None
        return _run_record(row) if row is not None else None

    def list_runs(self, limit: int = 20) -> list[RunRecord]:
        """The most recent runs first."""
        runs = schema.runs
        query = select(runs).order_by(runs.c.created_at.desc(), runs.c.id.desc()).limit(limit)
        with self._read() as conn:
            return [_run_record(row) for row in conn.execute(query)]

    def latest_run(self) -> RunRecord | None:
        found = self.list_runs(limit=1)
        return found[0] if found else None

    def mark_orphans(self) -> list[str]:
        """Runs left "running" by a process of this host that is gone become "interrupted".

        A run killed with SIGKILL, or by a crash of the machine, cannot record its own end;
        `runs` and `show` call this so such a run never shows as running forever. Runs of
        another host (a shared PostgreSQL store) are left alone: their pid means nothing here.
        """
        host = socket.gethostname()
        runs = schema.runs
        query = select(runs.c.id, runs.c.pid).where(
            (runs.c.status == "running") & (runs.c.host == host) & runs.c.pid.is_not(None)
        )
        with self._read() as conn:
            candidates = [(row.id, row.pid) for row in conn.execute(query)]
        orphans = [run_id for run_id, pid in candidates if not pid_alive(pid)]
        for run_id in orphans:
            run = self.get_run(run_id)
            if run is None or run.status != "running":
                continue  # it ended (or was taken up again) since the query
            # Said as the run would have said it: a RunFinished event, projected like any.
            self.record_event(
                RunFinished(
                    run_id=run_id,
                    status="interrupted",
                    reason=f"its process is gone; `council resume {run_id}` continues it",
                    total_cost_usd=run.total_cost_usd,
                )
            )
        return orphans

    # -- events ------------------------------------------------------------------------------

    def record_event(self, event: BaseEvent) -> None:
        """Persist one event (secrets redacted) and commit; usable directly as an EventSink.

        ModelCall and CommandRun events also fill the exchanges and commands tables, doit's
        Cloud* events the audit trail (store.audit); the runs and steps rows are projections of
        the run's events (RunClaimed, RunStarted, ModelCall's cost, RunFinished; StepStarted /
        StepFinished with the step's output), written here and nowhere else, in the event's own
        transaction.
        """
        if event.kind in TRANSIENT_KINDS:
            return  # progress of a call in flight: its ModelCall is the fact worth keeping
        if event.run_id is None:
            raise ValueError(f"{type(event).__name__} has no run_id: the store cannot file it")
        payload = _redact_tree(event.model_dump(mode="json"))
        # Rebuild from the redacted payload so derived rows hold exactly what the event row holds.
        clean = event_from_json(payload)
        run_id = event.run_id
        with self._write() as conn:
            seq = (
                conn.execute(
                    select(func.coalesce(func.max(schema.events.c.seq), 0)).where(
                        schema.events.c.run_id == run_id
                    )
                ).scalar_one()
                + 1
            )
            conn.execute(
                schema.events.insert().values(
                    run_id=run_id,
                    seq=seq,
                    ts=clean.ts,
                    kind=payload["kind"],
                    step=clean.step,
                    payload=_dumps(payload),
                )
            )
            self._derive(conn, clean, seq)

    def _derive(self, conn: Connection, event: BaseEvent, seq: int) -> None:
        """The rows other tables take from an event, written in the event's own transaction."""
        run_id = event.run_id
        common = {"run_id": run_id, "seq": seq, "ts": event.ts, "step": event.step}
        if isinstance(event, ModelCall):
            conn.execute(
                schema.exchanges.insert().values(
                    **common,
                    persona=event.persona,
                    alias=event.alias,
                    model=event.model,
                    messages=_dumps(event.messages),
                    response=event.response,
                    prompt_tokens=event.prompt_tokens,
                    completion_tokens=event.completion_tokens,
                    cost_usd=event.cost_usd,
                    latency_ms=event.latency_ms,
                    cached=event.cached,
                    error=event.error,
                )
            )
        elif isinstance(event, CommandRun):
            conn.execute(
                schema.commands.insert().values(
                    **common,
                    argv=_dumps(event.argv),
                    cwd=event.cwd,
                    exit_code=event.exit_code,
                    duration_s=event.duration_s,
                    timed_out=event.timed_out,
                    output_tail=event.output_tail,
                )
            )
        if isinstance(event, StepStarted | StepFinished):
            self._project_step(conn, event)
        else:
            self._project_run(conn, event)
        # doit's facts are also its audit trail: chained here, in the event's transaction.
        for kind, entry in entries_for(event):
            append_entry(conn, kind, entry, objective=run_id, ts=event.ts)

    def _project_run(self, conn: Connection, event: BaseEvent) -> None:
        """The run row's state as its events say: who runs it, where, how it ended, its cost."""
        runs = schema.runs
        values: dict[str, Any] = {}
        if isinstance(event, RunClaimed):
            values = {"status": "running", "reason": "", "pid": event.pid, "host": event.host}
        elif isinstance(event, RunStarted):
            values = {"branch": event.branch, "worktree": event.worktree}
        elif isinstance(event, RunFinished):
            values = {
                "status": event.status,
                "reason": event.reason,
                "total_cost_usd": event.total_cost_usd,
            }
        elif isinstance(event, ModelCall):
            # Parallel tracks may file their calls out of order: the cost only grows.
            now = conn.execute(
                select(runs.c.total_cost_usd).where(runs.c.id == event.run_id)
            ).scalar_one_or_none()
            if now is not None and event.total_cost_usd > now:
                values = {"total_cost_usd": event.total_cost_usd}
        if values:
            conn.execute(runs.update().where(runs.c.id == event.run_id).values(**values))

    def _project_step(self, conn: Connection, event: StepStarted | StepFinished) -> None:
        """A step's row: started (again, on resume: its previous outcome cleared), then its
        outcome and output. Events of no step (the pre-run line) make no row."""
        if not event.step:
            return
        if isinstance(event, StepStarted):
            values = {"status": "started", "started_at": event.ts, "finished_at": None}
            self._upsert_step(conn, event.run_id, event.step, {**values, "output": None})
            return
        output = event.output
        values = {
            "status": "failed" if event.status == "failed" else "ok",
            "finished_at": event.ts,
            "output": None if output is None else _dumps(output),
        }
        self._upsert_step(conn, event.run_id, event.step, values, started_at=event.ts)

    def events(self, run_id: str, kinds: Sequence[str] | None = None) -> list[BaseEvent]:
        """The run's events, typed, in the order they were recorded."""
        ev = schema.events
        query = select(ev.c.payload).where(ev.c.run_id == run_id).order_by(ev.c.seq)
        if kinds is not None:
            query = query.where(ev.c.kind.in_(list(kinds)))
        with self._read() as conn:
            return [event_from_json(payload) for (payload,) in conn.execute(query)]

    # -- steps -------------------------------------------------------------------------------

    def _upsert_step(
        self,
        conn: Connection,
        run_id: str,
        name: str,
        values: dict[str, Any],
        started_at: float | None = None,
    ) -> None:
        # Select-then-write inside the locked transaction: portable, no dialect-specific upsert.
        steps = schema.steps
        where = (steps.c.run_id == run_id) & (steps.c.name == name)
        if conn.execute(select(steps.c.name).where(where)).first() is None:
            row = {"run_id": run_id, "name": name, **values}
            row.setdefault("started_at", started_at if started_at is not None else time.time())
            conn.execute(steps.insert().values(**row))
        else:
            conn.execute(steps.update().where(where).values(**values))

    def steps(self, run_id: str) -> list[StepRecord]:
        """All steps of a run, in the order they started."""
        steps = schema.steps
        query = select(steps).where(steps.c.run_id == run_id).order_by(steps.c.started_at)
        with self._read() as conn:
            return [
                StepRecord(
                    run_id=row.run_id,
                    name=row.name,
                    status=row.status,
                    started_at=row.started_at,
                    finished_at=row.finished_at,
                    output=json.loads(row.output) if row.output is not None else None,
                )
                for row in conn.execute(query)
            ]

    def completed_steps(self, run_id: str) -> dict[str, dict[str, Any]]:
        """Steps that finished ok: name -> output (empty dict when none), in completion order."""
        steps = schema.steps
        query = (
            select(steps.c.name, steps.c.output)
            .where((steps.c.run_id == run_id) & (steps.c.status == "ok"))
            .order_by(steps.c.finished_at)
        )
        with self._read() as conn:
            return {
                name: (json.loads(output) if output is not None else {})
                for name, output in conn.execute(query)
            }

    # -- exchanges, commands, summary --------------------------------------------------------

    def exchanges(self, run_id: str) -> list[ExchangeRecord]:
        ex = schema.exchanges
        query = select(ex).where(ex.c.run_id == run_id).order_by(ex.c.seq)
        with self._read() as conn:
            return [
                ExchangeRecord(
                    run_id=row.run_id,
                    seq=row.seq,
                    ts=row.ts,
                    step=row.step,
                    persona=row.persona,
                    alias=row.alias,
                    model=row.model,
                    messages=json.loads(row.messages),
                    response=row.response,
                    prompt_tokens=row.prompt_tokens,
                    completion_tokens=row.completion_tokens,
                    cost_usd=row.cost_usd,
                    latency_ms=row.latency_ms,
                    cached=bool(row.cached),
                    error=row.error,
                )
                for row in conn.execute(query)
            ]

    def commands(self, run_id: str) -> list[CommandRecord]:
        cm = schema.commands
        query = select(cm).where(cm.c.run_id == run_id).order_by(cm.c.seq)
        with self._read() as conn:
            return [
                CommandRecord(
                    run_id=row.run_id,
                    seq=row.seq,
                    ts=row.ts,
                    step=row.step,
                    argv=json.loads(row.argv),
                    cwd=row.cwd,
                    exit_code=row.exit_code,
                    duration_s=row.duration_s,
                    timed_out=bool(row.timed_out),
                    output_tail=row.output_tail,
                )
                for row in conn.execute(query)
            ]

    def summary(self, run_id: str) -> RunSummary:
        """Token, cost and call totals of a run, overall and per persona."""
        run = self.get_run(run_id)
        if run is None:
            raise UsageError(f"unknown run id {run_id!r}")
        total = UsageTotals()
        personas: dict[str, UsageTotals] = {}
        for exchange in self.exchanges(run.id):
            for totals in (total, personas.setdefault(exchange.persona or "-", UsageTotals())):
                totals.model_calls += 1
                totals.cached_calls += int(exchange.cached)
                totals.failed_calls += int(exchange.error is not None)
                totals.prompt_tokens += exchange.prompt_tokens
                totals.completion_tokens += exchange.completion_tokens
                totals.cost_usd += exchange.cost_usd
        cm = schema.commands
        failed = (cm.c.exit_code.is_(None)) | (cm.c.exit_code != 0) | cm.c.timed_out
        with self._read() as conn:
            n_commands = conn.execute(
                select(func.count()).select_from(cm).where(cm.c.run_id == run.id)
            ).scalar_one()
            n_failed = conn.execute(
                select(func.count()).select_from(cm).where((cm.c.run_id == run.id) & failed)
            ).scalar_one()
        return RunSummary(
            run_id=run.id,
            status=run.status,
            total=total,
            commands=n_commands,
            failed_commands=n_failed,
            personas=personas,
        )

    # -- fix memory --------------------------------------------------------------------------

    def remember_fix(
        self,
        signature: str,
        kind: str,
        payload: dict[str, Any],
        *,
        tool: str = "",
        error_type: str = "",
        now: float | None = None,
    ) -> FixRecord:
        """Count one success of `payload` (redacted) against `signature`; a new fix gets a row."""
        clean = _redact_tree(payload)
        body = _dumps(clean)
        digest = hashlib.sha256(f"{kind}\x1f{body}".encode()).hexdigest()
        now = time.time() if now is None else now
        fx = schema.fixes
        where = (fx.c.signature == signature) & (fx.c.payload_hash == digest)
        with self._write() as conn:
            if conn.execute(select(fx.c.id).where(where)).first() is None:
                conn.execute(
                    fx.insert().values(
                        signature=signature,
                        tool=tool,
                        error_type=error_type,
                        kind=kind,
                        payload=body,
                        payload_hash=digest,
                        success_count=1,
                        failure_count=0,
                        created_at=now,
                        last_used_at=now,
                    )
                )
            else:
                conn.execute(
                    fx.update()
                    .where(where)
                    .values(success_count=fx.c.success_count + 1, last_used_at=now)
                )
            row = conn.execute(select(fx).where(where)).one()
        return _fix_record(row)

    def fix_failed(self, signature: str, payload_hash: str, *, now: float | None = None) -> None:
        """Count a remembered fix that did not turn its signature green when tried again."""
        fx = schema.fixes
        where = (fx.c.signature == signature) & (fx.c.payload_hash == payload_hash)
        with self._write() as conn:
            conn.execute(
                fx.update()
                .where(where)
                .values(
                    failure_count=fx.c.failure_count + 1,
                    last_used_at=time.time() if now is None else now,
                )
            )

    def fixes_for(self, signature: str) -> list[FixRecord]:
        """Remembered fixes of a signature, best first: net successes, then the most recent."""
        fx = schema.fixes
        query = (
            select(fx)
            .where(fx.c.signature == signature)
            .order_by(
                (fx.c.success_count - fx.c.failure_count).desc(),
                fx.c.last_used_at.desc(),
                fx.c.id.desc(),
            )
        )
        with self._read() as conn:
            return [_fix_record(row) for row in conn.execute(query)]


def _run_record(row: Any) -> RunRecord:
    return RunRecord(
        id=row.id,
        created_at=row.created_at,
        feature=row.feature,
        repo=row.repo,
        branch=row.branch,
        worktree=row.worktree,
        status=row.status,
        reason=row.reason,
        total_cost_usd=row.total_cost_usd,
        config=json.loads(row.config),
        state=json.loads(row.state),
        kind=row.kind,
        pid=row.pid,
        host=row.host,
    )


def _fix_record(row: Any) -> FixRecord:
    return FixRecord(
        signature=row.signature,
        tool=row.tool,
        error_type=row.error_type,
        kind=row.kind,
        payload=json.loads(row.payload),
        payload_hash=row.payload_hash,
        success_count=row.success_count,
        failure_count=row.failure_count,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
    )
