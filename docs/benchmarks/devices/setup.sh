#!/bin/sh
# Prepares a generated world (arbor-gen) for the device benchmarks and prints
# the environment the wrk scripts read: a session token for the root Admin, a
# mid-level Admin (Admin of a level-2 org) and a leaf User (a User-role member
# of a deepest-level org who owns devices) — the actors of arbor-bench-lists,
# inserted directly because generated users have no password — plus the id
# range of devices, a template id and the mid Admin's org.
#
#   setup.sh sqlite   /path/to/gen.db
#   setup.sh postgres postgres://postgres@127.0.0.1:5432/arbor_bench
set -eu
engine=$1
target=$2
now=$(($(date +%s) * 1000))
q() {
  case $engine in
    sqlite) sqlite3 -separator ' ' "$target" "$1" ;;
    postgres) psql -At -F ' ' -q "$target" -c "$1" ;;
  esac
}
admin_at_depth="SELECT MIN(m.user_id) FROM memberships m JOIN organizations o ON o.id = m.org_id
  JOIN roles r ON r.id = m.role_id WHERE r.builtin = 'admin' AND o.depth ="
root_admin=$(q "$admin_at_depth 1")
mid_admin=$(q "$admin_at_depth 2")
deepest=$(q "SELECT MAX(depth) FROM organizations")
leaf_user=$(q "SELECT MIN(d.owner_id) FROM devices d
  JOIN memberships m ON m.user_id = d.owner_id AND m.org_id = d.org_id
  JOIN roles r ON r.id = m.role_id JOIN organizations o ON o.id = d.org_id
  WHERE r.builtin = 'user' AND o.depth = $deepest")
session() { # user id -> token
  token=bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  hash=$(printf %s "$token" | sha256sum | cut -d' ' -f1)
  q "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at)
     VALUES ('$hash', $1, $now, $now, $now + 86400000)" > /dev/null
  echo "$token"
}
set -- $(q "SELECT MIN(id), MAX(id) FROM devices")
device_min=$1 device_max=$2
set -- $(q "SELECT MIN(id), MAX(id) FROM users")
user_min=$1 user_max=$2
template=$(q "SELECT MIN(id) FROM device_templates")
mid_org=$(q "SELECT org_id FROM memberships WHERE user_id = $mid_admin")
echo "export TOKEN_ROOT=$(session "$root_admin") TOKEN_MID=$(session "$mid_admin") TOKEN_LEAF=$(session "$leaf_user")"
echo "export DEVICE_MIN=$device_min DEVICE_MAX=$device_max USER_MIN=$user_min USER_MAX=$user_max TEMPLATE_ID=$template MID_ORG=$mid_org"
