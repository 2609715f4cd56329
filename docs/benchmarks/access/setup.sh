#!/bin/sh
# Prepares a benchmark database from a world made by the store's generator
# (arbor-gen, default 10,000 orgs / 100,000 users / 1,000,000 devices) and
# prints the environment the wrk scripts need: a session token for the root
# Admin (inserted directly: generated users have no password) and the id
# ranges of users and devices.
#
#   setup.sh sqlite  /path/to/copy-of-gen.db
#   setup.sh postgres postgres://postgres@127.0.0.1:5432/arbor_bench_access
set -eu
engine=$1
target=$2
token=bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
hash=$(printf %s "$token" | sha256sum | cut -d' ' -f1)
now=$(($(date +%s) * 1000))
sql="INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at)
     SELECT '$hash', MIN(m.user_id), $now, $now, $now + 86400000
     FROM memberships m JOIN roles r ON r.id = m.role_id JOIN organizations o ON o.id = m.org_id
     WHERE o.parent_id IS NULL AND r.builtin = 'admin';"
ranges="SELECT MIN(id), MAX(id) FROM users; SELECT MIN(id), MAX(id) FROM devices; SELECT MIN(id), MAX(id) FROM organizations WHERE parent_id IS NOT NULL;"
case $engine in
  sqlite)
    sqlite3 "$target" "$sql"
    set -- $(sqlite3 -separator ' ' "$target" "$ranges")
    ;;
  postgres)
    psql -q "$target" -c "$sql"
    set -- $(psql -At -F ' ' "$target" -c "SELECT MIN(id), MAX(id) FROM users" -c "SELECT MIN(id), MAX(id) FROM devices" \
      -c "SELECT MIN(id), MAX(id) FROM organizations WHERE parent_id IS NOT NULL")
    ;;
esac
echo "export BENCH_TOKEN=$token USER_MIN=$1 USER_MAX=$2 DEVICE_MIN=$3 DEVICE_MAX=$4 ORG_MIN=$5 ORG_MAX=$6"
