#!/bin/sh
# Run once by the postgres image on a fresh volume. The app connects as an
# ordinary role, as in production: the superuser-reserved slots are not its.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v app_password="$APP_DB_PASSWORD" -v dbname="$POSTGRES_DB" <<'SQL'
CREATE ROLE app LOGIN PASSWORD :'app_password';
ALTER DATABASE :"dbname" OWNER TO app;
SQL
