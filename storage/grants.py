"""What a dashboard's read-only login may read of the store, on PostgreSQL.

A deployment that wants one creates the role ``atalaia_dashboard`` (NOLOGIN) and grants it
to its reader login (``docker/postgres/init-atalaia.sh`` does, for Grafana's). Every
``atalaia db upgrade`` then gives that role SELECT on exactly the columns in
``DASHBOARD_READS``, what the Grafana dashboard's queries read, and nothing else: no other
table, and never a monitor's configuration. A store without the role is left alone.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from storage.models import Base

DASHBOARD_ROLE = "atalaia_dashboard"
# table -> the columns docker/grafana/dashboards/atalaia.json reads (tested against it)
DASHBOARD_READS: dict[str, tuple[str, ...]] = {
    "monitors": ("id", "name"),
    "models": ("id", "version"),
    "batches": ("id", "monitor_id", "interval_start", "interval_end"),
    "runs": ("id", "monitor_id", "job", "status", "interval_start", "interval_end", "model_id"),
    "scores": ("monitor_id", "entity", "ts", "model_id", "batch_id", "z"),
    "events": (
        "id",
        "monitor_id",
        "model_id",
        "entity",
        "start_ts",
        "end_ts",
        "peak_z",
        "anomalies",
        "is_open",
        "top_features",
    ),
}


def grant_dashboard_reads(connection: Connection) -> bool:
    """Give ``DASHBOARD_ROLE`` exactly ``DASHBOARD_READS`` (revoking anything else it had);
    return whether the role exists (only on PostgreSQL)."""
    if connection.dialect.name != "postgresql":
        return False
    exists = connection.execute(
        text("SELECT 1 FROM pg_roles WHERE rolname = :role"), {"role": DASHBOARD_ROLE}
    ).scalar()
    if not exists:
        return False
    quote = connection.dialect.identifier_preparer.quote
    role = quote(DASHBOARD_ROLE)
    for table in Base.metadata.sorted_tables:
        connection.execute(text(f"REVOKE ALL ON {quote(table.name)} FROM {role}"))
    for table, columns in DASHBOARD_READS.items():
        listed = ", ".join(quote(column) for column in columns)
        connection.execute(text(f"GRANT SELECT ({listed}) ON {quote(table)} TO {role}"))
    return True
