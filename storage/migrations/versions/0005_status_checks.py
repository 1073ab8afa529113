"""models.status and runs.status hold only their enums' values (CHECK constraints)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08

Statuses were free text. A store that holds a status outside the lists below stops the
upgrade before anything changes, with an error naming the rows: fix or delete them, then
upgrade again. The lists are this revision's copy of ``storage.types.ModelStatus`` and
``RunStatus``, so a later change of the enums does not change what this revision did.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = {
    "models": ("candidate", "champion", "retired"),
    "runs": ("running", "success", "failed", "abandoned", "refused"),
}
SHOWN = 10  # rows named in the error, at most


def _condition(allowed: Sequence[str]) -> str:
    return f"status IN ({', '.join(repr(value) for value in allowed)})"


def _refuse_unknown_statuses(connection: sa.Connection) -> None:
    problems = []
    for table_name, allowed in STATUSES.items():
        table = sa.table(table_name, sa.column("id", sa.Integer), sa.column("status", sa.String))
        outside = sa.or_(table.c.status.not_in(allowed), table.c.status.is_(None))
        rows = connection.execute(
            sa.select(table.c.id, table.c.status).where(outside).order_by(table.c.id)
        ).all()
        if rows:
            listed = ", ".join(f"id {row.id}: {row.status!r}" for row in rows[:SHOWN])
            more = f" and {len(rows) - SHOWN} more" if len(rows) > SHOWN else ""
            problems.append(
                f"{len(rows)} {table_name} row(s) with a status outside "
                f"{', '.join(allowed)} ({listed}{more})"
            )
    if problems:
        raise RuntimeError(
            "cannot add the status checks: the store holds "
            + "; ".join(problems)
            + ". Set those rows' status to an allowed value (or delete them), then upgrade again."
        )


def upgrade() -> None:
    _refuse_unknown_statuses(op.get_bind())
    for table_name, allowed in STATUSES.items():
        with op.batch_alter_table(table_name) as batch:
            batch.create_check_constraint(f"ck_{table_name}_status", _condition(allowed))


def downgrade() -> None:
    for table_name in STATUSES:
        with op.batch_alter_table(table_name) as batch:
            batch.drop_constraint(f"ck_{table_name}_status", type_="check")
