"""Database engines for the store: SQLite tuned for crash-safe, concurrent use; others as given.

SQLite gets WAL (readers never block the writer, a commit survives the process being killed),
a busy timeout (concurrent processes wait instead of failing) and foreign keys. SQLAlchemy emits
BEGIN itself so a write transaction can take the lock up front (BEGIN IMMEDIATE): a deferred
transaction that later tries to write can fail with "database is locked" without waiting.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

BUSY_TIMEOUT_S = 30.0

# Execution option naming a transaction that will write, so SQLite locks at BEGIN.
WRITE = "council_write"


def is_memory_sqlite(url: str) -> bool:
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite connections are configured for WAL, locking and foreign keys."""
    if make_url(url).get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)

    kwargs: dict[str, Any] = {
        "connect_args": {"timeout": BUSY_TIMEOUT_S, "check_same_thread": False}
    }
    if is_memory_sqlite(url):
        # One shared connection, or every checkout would see its own empty database.
        kwargs["poolclass"] = StaticPool
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN (below) instead of the sqlite3 module's implicit handling.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
