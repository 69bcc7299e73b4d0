#!/usr/bin/env bash
# make demo: myha's main job on a local lab it sets up itself. Three
# monitors (myha daemon) watch three real MariaDB servers; the primary is
# killed with kill -9 while a client writes rows, and the monitors fail over
# by themselves. The demo uses, and removes, only the lab it created.
set -euo pipefail
cd "$(dirname "$0")/.."
cfg=$(mktemp /tmp/myha-demo-XXXX.yaml)
pids=()
id=
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "$id" ]; then bin/labctl down -id "$id"; fi
  rm -f "$cfg"
}
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Starting a lab: 3 MariaDB 10.11 servers (one primary, two replicas) and 3 monitor hosts"
up=$(bin/labctl up -monitors -auto-rejoin -config "$cfg")
id=$(awk '/^lab: /{print $2}' <<<"$up")
lab=$(awk '/^dir: /{print $2}' <<<"$up")
grep -v '^remove it with' <<<"$up"
[ -n "$id" ] && [ -d "$lab" ] || { echo "demo: labctl up did not say which lab it made" >&2; exit 1; }

step "Starting three monitors: myha daemon --name monN"
for m in mon1 mon2 mon3; do
  if ip netns list 2>/dev/null | grep -q "^mh$id-$m"; then
    ip netns exec "mh$id-$m" bin/myha daemon --name "$m" --config "$cfg" --log-level info >"$lab/$m.log" 2>&1 &
  else
    bin/myha daemon --name "$m" --config "$cfg" --log-level info >"$lab/$m.log" 2>&1 &
  fi
  pids+=($!)
done
api=$(awk '/name: mon1/{f=1} f&&/address:/{print $2; exit}' "$cfg")
port=$(awk '/name: mon1/{f=1} f&&/api_port:/{print $2; exit}' "$cfg"); port=${port:-8080}
url="http://$api:$port"
for i in $(seq 1 100); do
  if bin/myha status --daemon "$url" 2>/dev/null | grep -q "healthy, primary [0-9]"; then break; fi
  sleep 0.2
done
bin/myha status --daemon "$url"

step "myha topology"
bin/myha topology --config "$cfg"

step "myha check (failures and warnings only; the full report lists every check)"
bin/myha check --config "$cfg" | grep -E "WARN|FAIL|^  new primary|is healthy|NOT healthy" || true

step "A client writes a row every 20 ms as the app user (labctl write)"
bin/labctl write -id "$id" -killed-at "$lab/killed-at" >"$lab/client.out" 2>"$lab/client.err" &
writer=$!
pids+=($writer)
for i in $(seq 1 100); do grep -qs writing "$lab/client.err" && break; sleep 0.1; done
cat "$lab/client.err"
sleep 1

step "kill -9 the primary db1"
db1=$(cat "$lab/db1.pid")
echo "$EPOCHREALTIME" >"$lab/killed-at"
kill -9 "$db1"
for i in $(seq 1 150); do
  if bin/myha history --daemon "$url" 2>/dev/null | grep -q "SUCCESS\|PARTIAL\|FAILED"; then break; fi
  sleep 0.1
done
sleep 1 # the client keeps writing to the new primary for a second
kill -TERM "$writer" 2>/dev/null || true
wait "$writer" || true
cat "$lab/client.out" "$lab/client.err" | grep -v '^client: writing' || true

step "The timeline: what the monitors did (myha history --daemon $url)"
bin/myha history --daemon "$url"

step "myha topology after the failover"
bin/myha topology --config "$cfg" || true
bin/myha status --daemon "$url" || true

step "The old primary db1 comes back (labctl start): read-only, then made a replica of the new primary (failover.auto_rejoin)"
back=$EPOCHREALTIME
bin/labctl start -id "$id" -server db1
rejoined=
for i in $(seq 1 150); do
  if bin/myha status --daemon "$url" 2>/dev/null | grep -q "healthy, primary [0-9]"; then rejoined=yes; break; fi
  sleep 0.2
done
if [ -n "$rejoined" ]; then
  awk -v a="$back" -v b="$EPOCHREALTIME" 'BEGIN{printf "db1 replicating from the new primary %.2f s after it started\n", b-a}'
else
  echo "db1 was not rejoined within 30 s; the monitors say why:"
  grep -h "old primary" "$lab"/mon*.log | tail -3 || true
fi
bin/myha topology --config "$cfg" || true
bin/myha status --daemon "$url" || true

step "Done; the monitors and lab $id are removed"
