#!/bin/sh
# One database and one owner role per service: no service can read another's tables.
# Runs once, on an empty data directory (docker-entrypoint-initdb.d). Passwords: $YAOSU_DB_PASSWORD.
set -eu
for svc in registry evaluation trading gateway; do
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<SQL
CREATE ROLE $svc LOGIN PASSWORD '$YAOSU_DB_PASSWORD';
CREATE DATABASE $svc OWNER $svc;
REVOKE ALL ON DATABASE $svc FROM PUBLIC;
SQL
done
