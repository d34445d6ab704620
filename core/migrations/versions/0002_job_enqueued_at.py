"""release_jobs.enqueued_at: when a queued job was last sent to the broker

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("release_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("enqueued_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("release_jobs", schema=None) as batch_op:
        batch_op.drop_column("enqueued_at")
