# Rendered by archy-hook render for {{ app.id }}: edit the template, not this file.
# Sourced by the image's entrypoint once, when the cluster is created (as the postgres user, on
# the local socket, PGPASSWORD set): a role and a database of its own for each app, with the
# password archy generated for it. The passwords are read from the mounted secret files here,
# so they are in no file but those.
set -e
for app in btcpayserver nbxplorer; do
  pw=$(cat "/run/secrets/$app-db/password")
  psql -v ON_ERROR_STOP=1 --username postgres --no-password --dbname postgres \
    --set=role="$app" --set=pw="$pw" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'pw';
CREATE DATABASE :"role" OWNER :"role" TEMPLATE template0 LC_CTYPE 'C' LC_COLLATE 'C' ENCODING 'UTF8';
SQL
done
