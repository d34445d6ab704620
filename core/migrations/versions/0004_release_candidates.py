"""release_candidates: re-runs of post-processing on a job's stored DP sample; release_jobs.candidate

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("release_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("candidate", sa.Integer(), nullable=True))

    op.create_table(
        "release_candidates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("stage", sa.String(length=64), nullable=True),
        sa.Column("progress", sa.Double(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("enqueued_at", sa.DateTime(), nullable=True),
        sa.Column("rows_released", sa.BigInteger(), nullable=True),
        sa.Column("artifacts", sa.JSON(), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("gate", sa.JSON(), nullable=True),
        sa.Column("timings", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"]),
        sa.ForeignKeyConstraint(["job_id"], ["release_jobs.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job_id", "number", name="uq_candidate_job_number"),
    )
    with op.batch_alter_table("release_candidates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_release_candidates_job_id"), ["job_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_release_candidates_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("release_candidates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_release_candidates_status"))
        batch_op.drop_index(batch_op.f("ix_release_candidates_job_id"))
    op.drop_table("release_candidates")
    with op.batch_alter_table("release_jobs", schema=None) as batch_op:
        batch_op.drop_column("candidate")
