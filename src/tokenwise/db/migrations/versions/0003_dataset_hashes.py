"""dataset content hashes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing datasets keep NULL: their bytes are gone (only the normalized Parquet is stored), and NULLs
    # never collide in a unique index.
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("content_hash", sa.String(length=64), nullable=True))
        batch_op.create_index("ux_datasets_user_content_hash", ["user_id", "content_hash"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.drop_index("ux_datasets_user_content_hash")
        batch_op.drop_column("content_hash")
