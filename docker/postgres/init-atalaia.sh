#!/bin/bash
# Runs once, when the PostgreSQL volume is first created. Airflow's metadata database is
# the image's own (POSTGRES_DB); Atalaia's store gets its own database and owner, and
# Grafana a login that may read only what its dashboard shows: the role atalaia_dashboard,
# which every `atalaia db upgrade` grants exactly those columns (storage/grants.py), never
# a monitor's configuration.
set -euo pipefail
psql --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" --set ON_ERROR_STOP=1 \
    --set store_password="$ATALAIA_DB_PASSWORD" \
    --set reader_password="$GRAFANA_DB_PASSWORD" <<'SQL'
CREATE ROLE atalaia LOGIN PASSWORD :'store_password';
CREATE DATABASE atalaia OWNER atalaia;
CREATE ROLE atalaia_dashboard NOLOGIN;
CREATE ROLE grafana_reader LOGIN PASSWORD :'reader_password' IN ROLE atalaia_dashboard;
\connect atalaia
GRANT CONNECT ON DATABASE atalaia TO grafana_reader;
GRANT USAGE ON SCHEMA public TO grafana_reader;
-- The store's tables are created later by `atalaia db upgrade`, as atalaia, which then
-- grants atalaia_dashboard SELECT on the dashboard's columns only.
SQL
