"""Fix memory: the recovery or patch that turned an error signature green, tried first next time.

Revision ID: 0002_fix_memory
Revises: 0001_initial
Create Date: 2026-01-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_fix_memory"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fixes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("signature", sa.String(64), nullable=False),
        sa.Column("tool", sa.String(200), nullable=False),
        sa.Column("error_type", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("payload_hash", sa.String(64), nullable=False),
        sa.Column("success_count", sa.Integer(), nullable=False),
        sa.Column("failure_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("last_used_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_fixes"),
        sa.UniqueConstraint("signature", "payload_hash", name="uq_fixes_signature_payload_hash"),
    )
    op.create_index("ix_fixes_signature", "fixes", ["signature"])


def downgrade() -> None:
    op.drop_index("ix_fixes_signature", table_name="fixes")
    op.drop_table("fixes")
