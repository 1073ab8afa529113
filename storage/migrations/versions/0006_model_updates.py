"""model_updates and events.absorbed_at: online updates of a version, absorbed events

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

An online update records the batch a version learned after scoring it and the detector and
calibrator it left (``atalaia.adaptation``). An event is absorbed once its rows joined the
baseline as the new normal (``baseline.adapt.after``); events stored before this revision
were not.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.types import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "model_updates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("learned_start", UTCDateTime(), nullable=False),
        sa.Column("learned_end", UTCDateTime(), nullable=False),
        sa.Column("flagged_through", UTCDateTime(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("flagged_rows", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("artifact_path", sa.String(length=1024), nullable=False),
        sa.Column("artifact_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_model_updates_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_updates")),
        sa.UniqueConstraint("model_id", "number", name=op.f("uq_model_updates_model_id_number")),
        sa.UniqueConstraint(
            "model_id", "learned_end", name=op.f("uq_model_updates_model_id_learned_end")
        ),
    )
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("absorbed_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_column("absorbed_at")
    op.drop_table("model_updates")
