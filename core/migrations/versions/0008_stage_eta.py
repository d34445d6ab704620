"""release_jobs/release_candidates.eta_seconds: the running stage's estimated time left

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("release_jobs", "release_candidates"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("eta_seconds", sa.Integer(), nullable=True))


def downgrade() -> None:
    for table in ("release_candidates", "release_jobs"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("eta_seconds")
