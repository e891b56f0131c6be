"""an index on runs.created_at: the runs stored lately, looked up while the live bus cannot deliver

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 01:00:00.000000
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_runs_created_at", "runs", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_runs_created_at", table_name="runs")
