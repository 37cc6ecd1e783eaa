"""Tests of council.store: migrations, runs, events, exchanges, commands, steps, crash safety."""

from __future__ import annotations

import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from pydantic import ValidationError
from sqlalchemy import create_engine, inspect

from council.errors import UsageError
from council.events import (
    CommandRun,
    Emitter,
    ModelCall,
    Notice,
    RunClaimed,
    RunFinished,
    RunStarted,
    StepFinished,
    StepStarted,
)
from council.events import (
    TestsReported as ReportedTests,
)
from council.redact import MASK
from council.store import Store
from council.store.migrate import alembic_config, head_revision, script_head
from council.store.schema import metadata

SRC = Path(__file__).resolve().parents[1] / "src"
TABLES = {
    *("runs", "steps", "events", "exchanges", "commands", "fixes", "alembic_version"),
    *("audit", "audit_anchor", "budget_limits", "cloud_spend"),  # council doit
    *("jobs", "api_keys"),  # council serve
}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.for_repo(tmp_path)
    yield s
    s.close()


def _db(repo: Path) -> Path:
    return repo / ".council" / "council.db"


def _python(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# -- migrations ------------------------------------------------------------------------------


def test_fresh_database_is_created_at_head(tmp_path: Path) -> None:
    Store.for_repo(tmp_path).close()

    assert _db(tmp_path).is_file()
    engine = create_engine(f"sqlite:///{_db(tmp_path)}")
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head_revision()
        assert set(inspect(conn).get_table_names()) == TABLES
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


def test_history_starts_with_one_initial_revision() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    revisions = list(script.walk_revisions())
    bases = [r for r in revisions if r.down_revision is None]
    assert [b.revision for b in bases] == ["0001_initial"]
    assert script.get_heads() == [head_revision()]
    assert script_head() == head_revision()  # the fast path's reading agrees with Alembic's


def test_opening_a_store_at_head_does_not_load_alembic(tmp_path: Path) -> None:
    Store.for_repo(tmp_path).close()  # creates and migrates
    probe = (
        "import sys; from pathlib import Path; from council.store import Store; "
        f"Store.for_repo(Path({str(tmp_path)!r})).close(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_migrated_schema_matches_the_table_definitions(store: Store, tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{_db(tmp_path)}")
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diffs == []


def test_downgrade_to_base_and_upgrade_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    Store(url).close()
    engine = create_engine(url)
    with engine.begin() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
        assert set(inspect(conn).get_table_names()) == {"alembic_version"}
    engine.dispose()

    with Store(url) as reopened:
        assert reopened.create_run(feature="f", repo="/r", config={}).startswith("r-")


def test_existing_database_opens_twice_and_keeps_data(tmp_path: Path) -> None:
    first = Store.for_repo(tmp_path)
    run_id = first.create_run(feature="add login", repo=str(tmp_path), config={"k": 1})
    second = Store.for_repo(tmp_path)  # opened while the first is still open
    third = Store.for_repo(tmp_path)
    assert second.get_run(run_id) == first.get_run(run_id)
    assert third.get_run(run_id).feature == "add login"
    for s in (first, second, third):
        s.close()


def test_concurrent_opens_of_a_fresh_database_all_succeed(tmp_path: Path) -> None:
    code = """
        import sys
        from pathlib import Path
        from council.store import Store
        s = Store.for_repo(Path(sys.argv[1]))
        print(s.create_run(feature="f", repo="r", config={}))
        s.close()
    """
    procs = [_python(code, str(tmp_path)) for _ in range(8)]
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [err for _, err in results]
    ids = {out.strip() for out, _ in results}
    with Store.for_repo(tmp_path) as s:
        assert {r.id for r in s.list_runs()} == ids
        assert len(ids) == 8


def test_in_memory_url_works() -> None:
    with Store("sqlite://") as s:
        run_id = s.create_run(feature="f", repo="/r", config={})
        s.record_event(Notice(run_id=run_id, message="hello"))
        assert [e.message for e in s.events(run_id)] == ["hello"]


# -- runs ------------------------------------------------------------------------------------


def test_create_and_get_run(store: Store) -> None:
    run_id = store.create_run(feature="add /health", repo="/repo", config={"limits": {"max": 3}})
    assert run_id.startswith("r-") and len(run_id.split("-")[1]) == 8

    run = store.get_run(run_id)
    assert run is not None
    assert (run.id, run.feature, run.repo, run.status, run.reason) == (
        run_id,
        "add /health",
        "/repo",
        "running",
        "",
    )
    assert run.config == {"limits": {"max": 3}}
    assert run.state == {}
    assert run.branch is None and run.total_cost_usd == 0.0
    assert store.get_run("r-19990101-000000") is None


def test_update_run_fields(store: Store) -> None:
    run_id = store.create_run(feature="f", repo="/r", config={})
    store.update_run(
        run_id,
        branch="council/f",
        worktree="/wt",
        status="failed",
        reason="no progress",
        total_cost_usd=0.25,
        state={"iteration": 2, "signature": "abc"},
    )
    run = store.get_run(run_id)
    assert (run.branch, run.worktree, run.status, run.reason) == (
        "council/f",
        "/wt",
        "failed",
        "no progress",
    )
    assert run.total_cost_usd == 0.25
    assert run.state == {"iteration": 2, "signature": "abc"}


def test_update_run_rejects_bad_input(store: Store) -> None:
    run_id = store.create_run(feature="f", repo="/r", config={})
    with pytest.raises(ValueError, match="invalid run status"):
        store.update_run(run_id, status="done")
    with pytest.raises(TypeError, match="feature"):
        store.update_run(run_id, feature="other")
    with pytest.raises(UsageError, match="unknown run id"):
        store.update_run("r-nope", status="green")
    assert store.get_run(run_id).status == "running"


def test_get_run_by_unique_prefix(store: Store) -> None:
    a = store.create_run(feature="a", repo="/r", config={})
    b = store.create_run(feature="b", repo="/r", config={})
    assert a != b
    common = 0
    while a[common] == b[common]:
        common += 1
    assert store.get_run(a[: common + 1]).id == a
    assert store.get_run(b[: common + 1]).id == b
    with pytest.raises(UsageError, match="ambiguous"):
        store.get_run(a[:common])
    assert store.get_run("x%") is None  # LIKE wildcards in the input are literal


def test_list_and_latest_runs(store: Store) -> None:
    assert store.latest_run() is None
    ids = [store.create_run(feature=f"f{i}", repo="/r", config={}) for i in range(4)]
    assert [r.id for r in store.list_runs()] == ids[::-1]
    assert [r.id for r in store.list_runs(limit=2)] == ids[:1:-1]
    assert store.latest_run().id == ids[-1]


# -- events ----------------------------------------------------------------------------------


def test_events_come_back_typed_and_in_order(store: Store) -> None:
    run_id = store.create_run(feature="f", repo="/r", config={})
    other = store.create_run(feature="g", repo="/r", config={})
    sent = [
        RunStarted(run_id=run_id, feature="f", repo="/r", branch="b", worktree="/wt"),
        StepStarted(run_id=run_id, step="plan", persona="Pacer"),
        ReportedTests(run_id=run_id, step="red", passed=0, failed=2, failures=["t::a", "t::b"]),
        Notice(run_id=other, message="elsewhere"),
        Notice(run_id=run_id, level="warning", message="careful"),
    ]
    for event in sent:
        store.record_event(event)

    got = store.events(run_id)
    assert got == [e for e in sent if e.run_id == run_id]
    assert isinstance(got[2], ReportedTests) and got[2].failures == ["t::a", "t::b"]
    assert [type(e) for e in store.events(run_id, kinds=["notice", "step_started"])] == [
        StepStarted,
        Notice,
    ]
    assert store.events(run_id, kinds=[]) == []
    assert [e.message for e in store.events(other)] == ["elsewhere"]


def test_store_is_an_event_sink(store: Store) -> None:
    run_id = store.create_run(feature="f", repo="/r", config={})
    emit = Emitter(run_id)
    emit.subscribe(store.record_event)
    emit.step = "tests"
    emit(Notice(message="via emitter"))
    (event,) = store.events(run_id)
    assert (event.run_id, event.step, event.message) == (run_id, "tests", "via emitter")


def test_event_without_run_id_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="no run_id"):
        store.record_event(Notice(message="orphan"))


def test_run_events_keep_the_run_row_current(store: Store) -> None:
    run_id = store.create_run(feature="f", repo="/r", config={})
    store.record_event(
        RunStarted(run_id=run_id, feature="f", repo="/r", branch="council/f", worktree="/wt")
    )
    store.record_event(
        RunFinished(run_id=run_id, status="green", reason="all pass", total_cost_usd=0.5)
    )
    run = store.get_run(run_id)
    assert (run.branch, run.worktree, run.status, run.reason, run.total_cost_usd) == (
        "council/f",
        "/wt",
        "green",
        "all pass",
        0.5,
    )


def test_the_run_row_is_a_projection_of_claims_costs_and_the_end(store: Store) -> None:
    run_id = store.create_run(feature="f", repo="/r", config={})
    store.record_event(RunFinished(run_id=run_id, status="stopped", reason="budget"))
    store.record_event(RunClaimed(run_id=run_id, pid=4242, host="worker-7"))
    run = store.get_run(run_id)
    assert (run.status, run.reason, run.pid, run.host) == ("running", "", 4242, "worker-7")
    # Parallel tracks may file their calls out of order: the run's cost never goes back.
    for total in (0.25, 0.75, 0.5):
        store.record_event(ModelCall(run_id=run_id, alias="a", total_cost_usd=total))
    assert store.get_run(run_id).total_cost_usd == 0.75


def test_a_run_whose_process_is_gone_ends_interrupted_by_an_event(store: Store) -> None:
    run_id = store.create_run(feature="f", repo="/r", config={})
    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait()
    store.record_event(RunClaimed(run_id=run_id, pid=gone.pid, host=socket.gethostname()))
    store.record_event(ModelCall(run_id=run_id, alias="a", total_cost_usd=0.125))

    assert store.mark_orphans() == [run_id]
    run = store.get_run(run_id)
    assert (run.status, run.total_cost_usd) == ("interrupted", 0.125)
    last = store.events(run_id)[-1]
    assert (last.kind, last.status) == ("run_finished", "interrupted")
    assert f"council resume {run_id}" in last.reason
    assert store.mark_orphans() == []  # said once


def test_exchanges_and_commands_come_from_the_events(store: Store) -> None:
    run_id = store.create_run(feature="f", repo="/r", config={})
    messages = [{"role": "user", "content": "plan it"}]
    store.record_event(
        ModelCall(
            run_id=run_id,
            step="plan",
            persona="Pacer",
            alias="planner",
            model="gpt-x",
            messages=messages,
            response='{"tasks": []}',
            prompt_tokens=100,
            completion_tokens=20,
            cost_usd=0.01,
            latency_ms=120.5,
        )
    )
    store.record_event(
        CommandRun(
            run_id=run_id,
            step="red",
            argv=["pytest", "-q"],
            cwd="/wt",
            exit_code=1,
            duration_s=1.5,
            output_tail="1 failed",
        )
    )
    store.record_event(
        ModelCall(run_id=run_id, persona="Builder", alias="coder", cached=True, error=None)
    )

    ex = store.exchanges(run_id)
    assert [(e.seq, e.persona, e.alias, e.cached) for e in ex] == [
        (1, "Pacer", "planner", False),
        (3, "Builder", "coder", True),
    ]
    first = ex[0]
    assert (first.step, first.model, first.messages, first.response) == (
        "plan",
        "gpt-x",
        messages,
        '{"tasks": []}',
    )
    assert (first.prompt_tokens, first.completion_tokens, first.cost_usd, first.latency_ms) == (
        100,
        20,
        0.01,
        120.5,
    )
    (cmd,) = store.commands(run_id)
    assert (cmd.seq, cmd.step, cmd.argv, cmd.cwd, cmd.exit_code) == (
        2,
        "red",
        ["pytest", "-q"],
        "/wt",
        1,
    )
    assert (cmd.duration_s, cmd.timed_out, cmd.output_tail) == (1.5, False, "1 failed")


def test_summary_adds_up_usage_per_persona(store: Store) -> None:
    run_id = store.create_run(feature="f", repo="/r", config={})
    calls = [
        ("Pacer", 100, 10, 0.010, False, None),
        ("Builder", 200, 50, 0.020, False, None),
        ("Builder", 200, 50, 0.0, True, None),
        ("Builder", 30, 0, 0.001, False, "rate limited"),
        (None, 5, 5, 0.002, False, None),
    ]
    for persona, p, c, cost, cached, error in calls:
        store.record_event(
            ModelCall(
                run_id=run_id,
                persona=persona,
                alias="a",
                prompt_tokens=p,
                completion_tokens=c,
                cost_usd=cost,
                cached=cached,
                error=error,
            )
        )
    store.record_event(CommandRun(run_id=run_id, argv=["pytest"], exit_code=0))
    store.record_event(CommandRun(run_id=run_id, argv=["pytest"], exit_code=1))
    store.record_event(CommandRun(run_id=run_id, argv=["sleep"], exit_code=0, timed_out=True))

    s = store.summary(run_id[:12])
    assert s.run_id == run_id and s.status == "running"
    assert (s.model_calls, s.cached_calls, s.total.failed_calls) == (5, 1, 1)
    assert (s.prompt_tokens, s.completion_tokens) == (535, 115)
    assert s.cost_usd == pytest.approx(0.033)
    assert (s.commands, s.failed_commands) == (3, 2)
    assert set(s.personas) == {"Pacer", "Builder", "-"}
    builder = s.personas["Builder"]
    assert (builder.model_calls, builder.cached_calls, builder.prompt_tokens) == (3, 1, 430)
    assert builder.cost_usd == pytest.approx(0.021)
    with pytest.raises(UsageError):
        store.summary("r-missing")


# -- steps -----------------------------------------------------------------------------------


def _start(store: Store, run_id: str, name: str) -> None:
    store.record_event(StepStarted(run_id=run_id, step=name))


def _finish(store: Store, run_id: str, name: str, status: str, output: dict | None) -> None:
    store.record_event(StepFinished(run_id=run_id, step=name, status=status, output=output))


def test_steps_and_completed_steps(store: Store) -> None:
    run_id = store.create_run(feature="f", repo="/r", config={})
    _start(store, run_id, "plan")
    _finish(store, run_id, "plan", "ok", {"tasks": ["a", "b"]})
    _start(store, run_id, "context")
    _finish(store, run_id, "context", "ok", None)
    _start(store, run_id, "tests")
    _finish(store, run_id, "tests", "failed", {"error": "bad json"})
    _start(store, run_id, "code")  # started, never finished: the crash point

    assert store.completed_steps(run_id) == {"plan": {"tasks": ["a", "b"]}, "context": {}}
    assert list(store.completed_steps(run_id)) == ["plan", "context"]
    statuses = {s.name: s.status for s in store.steps(run_id)}
    assert statuses == {"plan": "ok", "context": "ok", "tests": "failed", "code": "started"}
    code = next(s for s in store.steps(run_id) if s.name == "code")
    assert code.finished_at is None and code.output is None


def test_restarting_a_step_clears_its_previous_outcome(store: Store) -> None:
    run_id = store.create_run(feature="f", repo="/r", config={})
    _start(store, run_id, "tests")
    _finish(store, run_id, "tests", "ok", {"files": ["t.py"]})
    _start(store, run_id, "tests")
    assert store.completed_steps(run_id) == {}
    _finish(store, run_id, "tests", "ok", {"files": ["t2.py"]})
    assert store.completed_steps(run_id) == {"tests": {"files": ["t2.py"]}}
    assert len(store.steps(run_id)) == 1


def test_a_step_finished_without_a_start_and_a_bad_status(store: Store) -> None:
    run_id = store.create_run(feature="f", repo="/r", config={})
    _finish(store, run_id, "gates", "ok", {"lint": "clean"})
    (step,) = store.steps(run_id)
    assert step.started_at == step.finished_at
    assert store.completed_steps(run_id) == {"gates": {"lint": "clean"}}
    with pytest.raises(ValidationError):  # no such step status: not even an event
        _finish(store, run_id, "gates", "done", None)


# -- redaction -------------------------------------------------------------------------------


def test_secrets_are_masked_before_they_are_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_secret = "env-secret-value-9f8e7d6c"
    key = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0"
    monkeypatch.setenv("OPENAI_API_KEY", env_secret)
    store = Store.for_repo(tmp_path)
    run_id = store.create_run(feature="f", repo="/r", config={"api_base": "x", "k": key})
    store.record_event(
        ModelCall(
            run_id=run_id,
            persona="Maven",
            alias="ctx",
            messages=[{"role": "user", "content": f"use {key} and {env_secret}"}],
            response=f"the key is {key}",
        )
    )
    store.record_event(
        CommandRun(run_id=run_id, argv=["curl", "-H", f"x: {env_secret}"], output_tail=key)
    )
    store.record_event(Notice(run_id=run_id, message=f"leaked {env_secret}"))
    _finish(store, run_id, "context", "ok", {"notes": [f"found {key}"]})
    store.update_run(run_id, state={"nested": {"deep": [env_secret]}}, reason=key)

    (model_call,) = store.events(run_id, kinds=["model_call"])
    assert model_call.messages[0]["content"] == f"use {MASK} and {MASK}"
    assert model_call.response == f"the key is {MASK}"
    assert store.exchanges(run_id)[0].response == f"the key is {MASK}"
    assert store.commands(run_id)[0].argv == ["curl", "-H", f"x: {MASK}"]
    assert store.commands(run_id)[0].output_tail == MASK
    assert store.events(run_id, kinds=["notice"])[0].message == f"leaked {MASK}"
    assert store.completed_steps(run_id) == {"context": {"notes": [f"found {MASK}"]}}
    run = store.get_run(run_id)
    assert run.config["k"] == MASK and run.reason == MASK
    assert run.state == {"nested": {"deep": [MASK]}}
    store.close()

    # Nothing of either secret anywhere in the database files (WAL included).
    for path in _db(tmp_path).parent.iterdir():
        data = path.read_bytes()
        assert key.encode() not in data, path
        assert env_secret.encode() not in data, path


# -- crash safety ----------------------------------------------------------------------------


def test_writes_survive_sigkill(tmp_path: Path) -> None:
    code = """
        import os, signal, sys
        from pathlib import Path
        from council.events import CommandRun, ModelCall, Notice, StepFinished, StepStarted
        from council.store import Store
        s = Store.for_repo(Path(sys.argv[1]))
        run_id = s.create_run(feature="crash", repo=sys.argv[1], config={})
        print(run_id, flush=True)
        s.record_event(StepStarted(run_id=run_id, step="plan"))
        s.record_event(ModelCall(run_id=run_id, step="plan", persona="Pacer", alias="p",
                                 prompt_tokens=7))
        s.record_event(StepFinished(run_id=run_id, step="plan", output={"tasks": ["t1"]}))
        s.record_event(StepStarted(run_id=run_id, step="tests"))
        s.record_event(CommandRun(run_id=run_id, step="tests", argv=["pytest"], exit_code=1))
        s.record_event(Notice(run_id=run_id, message="about to die"))
        s.update_run(run_id, state={"iteration": 1})
        os.kill(os.getpid(), signal.SIGKILL)
    """
    proc = _python(code, str(tmp_path))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, err
    run_id = out.strip()

    with Store.for_repo(tmp_path) as s:
        run = s.get_run(run_id)
        assert run.status == "running" and run.state == {"iteration": 1}
        assert s.completed_steps(run_id) == {"plan": {"tasks": ["t1"]}}
        kinds = [e.kind for e in s.events(run_id) if not e.kind.startswith("step_")]
        assert kinds == ["model_call", "command_run", "notice"]
        assert s.exchanges(run_id)[0].prompt_tokens == 7
        assert s.commands(run_id)[0].exit_code == 1
        assert {st.name: st.status for st in s.steps(run_id)} == {"plan": "ok", "tests": "started"}


def test_sqlite_file_is_plain_sqlite(store: Store, tmp_path: Path) -> None:
    run_id = store.create_run(feature="f", repo="/r", config={})
    store.record_event(Notice(run_id=run_id, message="m"))
    conn = sqlite3.connect(_db(tmp_path))
    try:
        kind, seq = conn.execute("SELECT kind, seq FROM events").fetchone()
    finally:
        conn.close()
    assert (kind, seq) == ("notice", 1)
