"""Run kind: `run` for `council run`, `heal` for `council heal`, so both share the run history.

Revision ID: 0003_run_kind
Revises: 0002_fix_memory
Create Date: 2026-01-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_run_kind"
down_revision: str | Sequence[str] | None = "0002_fix_memory"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(16), nullable=False, server_default="run"),
        )


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("kind")
