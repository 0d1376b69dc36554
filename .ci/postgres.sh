#!/usr/bin/env bash
# Starts the machine's PostgreSQL for the sms-postgres tests and prints the URL they read
# (SMS_TEST_POSTGRES_URL): a role `sms_test` with a password, allowed to create databases (each
# test makes its own), and a database `sms_test` it owns. Installs Debian's `postgresql` where it
# is missing. Run as root; idempotent (a second run starts nothing new and prints the same URL).
#
#   export SMS_TEST_POSTGRES_URL="$(.ci/postgres.sh)"
#
# Everything but the URL goes to stderr. The role's password is a fixed test password: the
# server listens on this machine only (Debian's default listen_addresses = localhost).
set -euo pipefail

ROLE=sms_test
PASSWORD=sms_test_pw
DATABASE=sms_test

if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || ! command -v pg_ctlcluster >/dev/null; then
  echo "postgres.sh: installing postgresql (apt-get)" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi

# The first cluster (Debian's packages create `main` for the installed version); one is
# created when there is none.
if [ -z "$(pg_lsclusters --no-header 2>/dev/null)" ]; then
  version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  echo "postgres.sh: creating cluster $version/main" >&2
  pg_createcluster "$version" main >&2
fi
read -r version cluster port status _ < <(pg_lsclusters --no-header | head -n 1)
if [ "$status" != "online" ]; then
  echo "postgres.sh: starting cluster $version/$cluster on port $port" >&2
  pg_ctlcluster "$version" "$cluster" start >&2
fi

# As the postgres superuser, through the local socket (peer authentication). cd: runuser keeps
# the working directory, which the postgres user may not be able to read.
psql_admin() {
  (cd / && runuser -u postgres -- psql -p "$port" -v ON_ERROR_STOP=1 -qAtX "$@")
}
for _ in $(seq 1 50); do
  psql_admin -c 'SELECT 1' >/dev/null 2>&1 && break
  sleep 0.2
done
psql_admin <<SQL >&2
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') THEN
    CREATE ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD';
  ELSE
    ALTER ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD';
  END IF;
END
\$\$;
SELECT 'CREATE DATABASE $DATABASE OWNER $ROLE'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DATABASE')\gexec
SQL

# TCP on the loopback address: password (scram-sha-256) authentication, as a real server asks.
echo "postgres://$ROLE:$PASSWORD@127.0.0.1:$port/$DATABASE?sslmode=disable"
