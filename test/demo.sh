#!/usr/bin/env bash
# make demo: bring up a real 3-server MariaDB lab, show what myha sees, break
# things the way production does, show it again, and clean up.
set -euo pipefail
cd "$(dirname "$0")/.."
cfg=$(mktemp /tmp/myha-demo-XXXX.yaml)
trap 'bin/labctl down >/dev/null; rm -f "$cfg"' EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Starting a lab: 3 MariaDB 10.11 servers, one primary and two replicas"
bin/labctl up -config "$cfg"

step "myha topology"
bin/myha topology --config "$cfg"

lab=$(ls -d /tmp/myha-lab/[0-9]* | head -1)
sock() { echo "$lab/$1/sock"; }

step "A DBA writes on replica db3 by mistake (an errant transaction), and db2's SQL thread is stopped"
mariadb -uroot -S "$(sock db3)" -e "SET GLOBAL read_only=0; INSERT INTO lab.seed VALUES (42); SET GLOBAL read_only=1;"
mariadb -uroot -S "$(sock db2)" -e "STOP SLAVE SQL_THREAD"
bin/myha topology --config "$cfg"

step "The same, as JSON for scripts (myha topology --json), db3 only"
json=$(bin/myha topology --config "$cfg" --json)
if command -v python3 >/dev/null; then
  python3 -c 'import json,sys; print(json.dumps([s for s in json.load(sys.stdin)["clusters"][0]["servers"] if s["server_id"]==3][0], indent=2))' <<<"$json"
else
  echo "$json"
fi

step "Done; the lab is removed"
