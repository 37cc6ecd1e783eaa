"""Budget reservations for `council doit`: a spend row is first a reservation of the estimated
cost (taken atomically against the limits before anything is created), then settled to the
objective's cost, or released when it fails; a reservation left by a killed objective expires.

Revision ID: 0007_spend_reservations
Revises: 0006_server_queue
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_spend_reservations"
down_revision: str | Sequence[str] | None = "0006_server_queue"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cloud_spend") as batch:
        # Rows written before reservations existed were spend already committed: settled.
        batch.add_column(
            sa.Column("state", sa.String(16), nullable=False, server_default="settled")
        )
        batch.add_column(sa.Column("expires_at", sa.Float(), nullable=True))
    op.create_index("ix_cloud_spend_objective", "cloud_spend", ["objective"])


def downgrade() -> None:
    op.drop_index("ix_cloud_spend_objective", table_name="cloud_spend")
    with op.batch_alter_table("cloud_spend") as batch:
        batch.drop_column("expires_at")
        batch.drop_column("state")
