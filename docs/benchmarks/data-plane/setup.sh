#!/bin/sh
# Prepares a generated world (arbor-gen) for the data-plane benchmarks: the
# generated template gets two datastreams (V1 double 0–100, V2 integer), and
# every device a known auth token, `dev-<id>` (its SHA-256 stored as the
# token hash, as the server stores tokens), so wrk can pick random devices.
# Prints the environment the wrk scripts read.
#
#   setup.sh sqlite   /path/to/gen.db
#   setup.sh postgres postgres://postgres@127.0.0.1:5432/arbor_bench
set -eu
engine=$1
target=$2
q() {
  case $engine in
    sqlite) sqlite3 -separator ' ' "$target" "$1" ;;
    postgres) psql -At -F ' ' -q "$target" -c "$1" ;;
  esac
}
template=$(q "SELECT MIN(id) FROM device_templates")
q "DELETE FROM template_datastreams WHERE template_id = $template" > /dev/null
q "INSERT INTO template_datastreams (template_id, pin, name, value_type, min_value, max_value, units)
   VALUES ($template, 1, 'Temperature', 'double', 0, 100, '°C'),
          ($template, 2, 'Level', 'integer', 0, 1000, '')" > /dev/null
case $engine in
  sqlite)
    python3 - "$target" <<'PY'
import hashlib, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
ids = [r[0] for r in db.execute("SELECT id FROM devices")]
db.executemany("UPDATE devices SET auth_token_hash = ? WHERE id = ?",
               ((hashlib.sha256(f"dev-{i}".encode()).hexdigest(), i) for i in ids))
db.commit()
PY
    ;;
  postgres)
    q "UPDATE devices SET auth_token_hash = encode(sha256(('dev-' || id)::bytea), 'hex')" > /dev/null
    q "VACUUM ANALYZE devices" > /dev/null
    ;;
esac
set -- $(q "SELECT MIN(id), MAX(id) FROM devices WHERE template_id = $template")
echo "export DEVICE_MIN=$1 DEVICE_MAX=$2"
