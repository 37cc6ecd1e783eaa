"""Cloud ledger for `council doit`: the hash-chained audit trail, its anchor, budget limits and
the estimated spend per objective.

Revision ID: 0005_cloud_ledger
Revises: 0004_run_owner
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_cloud_ledger"
down_revision: str | Sequence[str] | None = "0004_run_owner"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("objective", sa.String(64)),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit"),
    )
    op.create_table(
        "audit_anchor",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("head_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_anchor"),
    )
    op.create_table(
        "budget_limits",
        sa.Column("scope", sa.String(200), nullable=False),
        sa.Column("limit_usd", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("scope", name="pk_budget_limits"),
    )
    op.create_table(
        "cloud_spend",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("objective", sa.String(64), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("resource_group", sa.String(200)),
        sa.Column("monthly_usd", sa.Float(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cloud_spend"),
    )
    op.create_index("ix_cloud_spend_ts", "cloud_spend", ["ts"])


def downgrade() -> None:
    op.drop_index("ix_cloud_spend_ts", table_name="cloud_spend")
    op.drop_table("cloud_spend")
    op.drop_table("budget_limits")
    op.drop_table("audit_anchor")
    op.drop_table("audit")
