"""Schema migrations of the store, run programmatically with Alembic (no alembic.ini).

`upgrade` brings a database to the head revision. Several processes may open the same fresh
database at once, so the whole upgrade runs in one transaction that holds the database's write
lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock): the first creates the schema, the
others wait and then find it at head.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

from council.store.engine import WRITE

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# Arbitrary constant key for pg_advisory_xact_lock, shared by every council process.
_PG_LOCK_KEY = 0x636F756E63696C  # "council"


_REVISION = re.compile(r'^(down_)?revision\b[^=]*=\s*["\']?([\w.-]+|None)', re.MULTILINE)


def alembic_config(url: str | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        # ConfigParser treats % as interpolation; URLs with escaped passwords contain it.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str | None:
    """The head revision as Alembic sees it (loads Alembic and every script)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@cache
def script_head() -> str | None:
    """The head revision read off the scripts' `revision` lines, without importing Alembic.

    Every council command opens the store, and importing Alembic costs a few hundred ms of CPU
    there; it is only needed when a database is behind. tests/test_store.py checks this agrees
    with Alembic's own answer.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS_DIR / "versions").glob("*.py"):
        for down, value in _REVISION.findall(script.read_text(encoding="utf-8")):
            if value != "None":
                (parents if down else revisions).add(value)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def current_revision(conn: Connection) -> str | None:
    """The revision stamped in the database, or None for a database Alembic never touched."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return rows[0] if len(rows) == 1 else None


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database behind `engine` to `revision`, serialised against other processes."""
    with engine.connect() as conn:
        conn.execution_options(**{WRITE: True})
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
            head = script_head()
            if revision == "head" and head is not None and current_revision(conn) == head:
                return  # the common case: nothing to do, and no need to load Alembic at all
            from alembic import command

            config = alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
