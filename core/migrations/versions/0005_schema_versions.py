"""schema_versions: every confirmed public schema of a dataset; release_jobs.schema_version

Each dataset whose schema is confirmed gets its current schema as version 1, credited to whoever the
audit log says confirmed it last (or registered it with its schema), at that time. A release requested
after that confirmation ran under it and is marked version 1; an older release is left unmarked: the
schema it ran under was overwritten and is not known.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

MIGRATED_NOTE = "the schema in force when schema versions began to be recorded"


def upgrade() -> None:
    op.create_table(
        "schema_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("schema", sa.JSON(), nullable=False),
        sa.Column("confirmed_by", sa.Integer(), nullable=True),
        sa.Column("confirmed_by_name", sa.String(length=64), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"]),
        sa.ForeignKeyConstraint(["confirmed_by"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dataset_id", "version", name="uq_schema_version_dataset_version"),
    )
    with op.batch_alter_table("schema_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_schema_versions_dataset_id"), ["dataset_id"], unique=False)
    with op.batch_alter_table("release_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("schema_version", sa.Integer(), nullable=True))
    _backfill()


def _backfill() -> None:
    conn = op.get_bind()
    meta = sa.MetaData()
    datasets = sa.Table("datasets", meta, autoload_with=conn)
    users = sa.Table("users", meta, autoload_with=conn)
    events = sa.Table("audit_events", meta, autoload_with=conn)
    jobs = sa.Table("release_jobs", meta, autoload_with=conn)
    versions = sa.Table("schema_versions", meta, autoload_with=conn)
    confirmed = conn.execute(
        sa.select(datasets.c.id, datasets.c.public_schema, datasets.c.owner_id, datasets.c.created_at)
        .where(datasets.c.schema_confirmed == sa.true())
        .order_by(datasets.c.id)
    ).all()
    for ds_id, schema, owner_id, created_at in confirmed:
        # the latest confirmation (or edit), else the registration (with a schema: confirmed at once)
        event = None
        for actions in (("dataset.confirm_schema", "dataset.schema_version"), ("dataset.register",)):
            event = conn.execute(
                sa.select(events.c.actor_id, events.c.actor, events.c.created_at)
                .where(
                    events.c.action.in_(actions), events.c.object_type == "dataset", events.c.object_id == str(ds_id)
                )
                .order_by(events.c.id.desc())
                .limit(1)
            ).first()
            if event is not None:
                break
        if event is not None:
            actor_id, actor_name, at = event
        else:
            owner = conn.execute(sa.select(users.c.username).where(users.c.id == owner_id)).scalar()
            actor_id, actor_name, at = owner_id, owner or "unknown", created_at
        if actor_id is not None and conn.execute(sa.select(users.c.id).where(users.c.id == actor_id)).first() is None:
            actor_id = None
        conn.execute(
            versions.insert().values(
                dataset_id=ds_id,
                version=1,
                schema=schema,
                confirmed_by=actor_id,
                confirmed_by_name=(actor_name or "unknown")[:64],
                confirmed_at=at,
                note=MIGRATED_NOTE,
            )
        )
        conn.execute(jobs.update().where(jobs.c.dataset_id == ds_id, jobs.c.created_at >= at).values(schema_version=1))


def downgrade() -> None:
    with op.batch_alter_table("release_jobs", schema=None) as batch_op:
        batch_op.drop_column("schema_version")
    with op.batch_alter_table("schema_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_schema_versions_dataset_id"))
    op.drop_table("schema_versions")
