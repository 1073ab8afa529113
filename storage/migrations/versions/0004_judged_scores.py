"""scores.judged: whether a score was judged against calibration

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07

A step whose score rests on less history than the detector's window and smoothing need is
stored but not judged (p-value 1, never flagged) and stays out of calibration pools. Scores
stored before this revision were all judged.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("scores") as batch:
        batch.add_column(
            sa.Column("judged", sa.Boolean(), server_default=sa.true(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("scores") as batch:
        batch.drop_column("judged")
