"""run queue: leases with fencing epochs, cancel requests, the final-event outbox, checkpoints

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 14:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("question", sa.Text(), nullable=True))
        batch.add_column(sa.Column("opens_thread", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("lease_owner", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("epoch", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("cancel_requested_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("final_published", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("checkpoint", sa.JSON(), nullable=True))
        batch.create_index("ix_runs_status_lease", ["status", "lease_expires_at"])


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_status_lease")
        for column in (
            "checkpoint",
            "final_published",
            "cancel_requested_at",
            "attempts",
            "epoch",
            "lease_expires_at",
            "lease_owner",
            "opens_thread",
            "question",
        ):
            batch.drop_column(column)
