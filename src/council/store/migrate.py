"""Schema migrations of the store, run programmatically with Alembic (no alembic.ini).

`upgrade` brings a database to the head revision. Several processes may open the same fresh
database at once, so the whole upgrade runs in one transaction that holds the database's write
lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock): the first creates the schema, the
others wait and then find it at head.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from council.store.engine import WRITE

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# Arbitrary constant key for pg_advisory_xact_lock, shared by every council process.
_PG_LOCK_KEY = 0x636F756E63696C  # "council"


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        # ConfigParser treats % as interpolation; URLs with escaped passwords contain it.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database behind `engine` to `revision`, serialised against other processes."""
    with engine.connect() as conn:
        conn.execution_options(**{WRITE: True})
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
            if revision == "head" and current_revision(conn) == head_revision():
                return  # the common case: nothing to do, and no need to load the scripts' env
            config = alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
