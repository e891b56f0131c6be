"""client-chosen thread ids (up to 128 characters), and the last agent a run's pipeline runs

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# The thread id and the columns that reference it.
_THREAD_ID_COLUMNS = (("threads", "id"), ("messages", "thread_id"), ("runs", "thread_id"))


def _widen(length: int, was: int) -> None:
    # SQLite does not enforce a VARCHAR's length: rebuilding three tables (and their foreign keys) for
    # it would change nothing. PostgreSQL widens a varchar in place; the foreign keys stay.
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, column in _THREAD_ID_COLUMNS:
        op.alter_column(
            table,
            column,
            type_=sa.String(length=length),
            existing_type=sa.String(length=was),
            existing_nullable=False,
        )


def upgrade() -> None:
    _widen(128, 36)
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("stop_after", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("stop_after")
    # Only possible while every thread id still fits in 36 characters.
    _widen(36, 128)
