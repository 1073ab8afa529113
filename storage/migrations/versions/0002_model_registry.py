"""model registry: promotion time, the champion a version replaced, one champion per monitor

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.types import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ONE_CHAMPION = sa.text("status = 'champion'")


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("promoted_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("previous_champion", sa.Integer(), nullable=True))
    op.create_index(
        "uq_models_one_champion",
        "models",
        ["monitor_id"],
        unique=True,
        sqlite_where=ONE_CHAMPION,
        postgresql_where=ONE_CHAMPION,
    )


def downgrade() -> None:
    op.drop_index("uq_models_one_champion", table_name="models")
    with op.batch_alter_table("models") as batch:
        batch.drop_column("previous_champion")
        batch.drop_column("promoted_at")
