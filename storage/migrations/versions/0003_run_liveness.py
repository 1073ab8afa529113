"""run liveness (host, pid, heartbeat) and absolute stored paths

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07

Runs record the host and process that run them and a heartbeat, so a run whose process was
killed can be told from one still working. Batches and models stored with a relative path
(an older default, relative to the working directory) get the absolute path, where the file
exists relative to the directory the upgrade runs in.
"""

from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

from storage.types import UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STORED_PATHS = {"batches": "landing_path", "models": "artifact_path"}


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("host", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("pid", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", UTCDateTime(), nullable=True))
    connection = op.get_bind()
    for table_name, column_name in STORED_PATHS.items():
        table = sa.table(table_name, sa.column("id", sa.Integer), sa.column(column_name))
        path = table.c[column_name]
        for identifier, stored in connection.execute(sa.select(table.c.id, path)).all():
            if not Path(stored).is_absolute() and Path(stored).exists():
                absolute = str(Path(stored).absolute())
                connection.execute(
                    table.update().where(table.c.id == identifier).values({column_name: absolute})
                )


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("heartbeat_at")
        batch.drop_column("pid")
        batch.drop_column("host")
