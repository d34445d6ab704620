"""datasets: the proposal's role suggestions (steward only) and the raw data's erasure record

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("schema_suggestions", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("raw_erased_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("raw_erased_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("raw_erasure_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.drop_column("raw_erasure_reason")
        batch_op.drop_column("raw_erased_by")
        batch_op.drop_column("raw_erased_at")
        batch_op.drop_column("schema_suggestions")
