#!/usr/bin/env bash
# make test-nonroot (as root): the integration suite as an ordinary user on a
# machine root has used. Root makes the user myha-newcomer once and builds the
# binaries (the user needs no Go toolchain); the user then runs every test:
# what runs on loopback runs (the daemon's failovers, switchovers, restarts),
# what needs network namespaces skips and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "test-nonroot: run as root (it makes the user and switches to it)" >&2; exit 2; }
user=myha-newcomer
id "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$user"
dir=$(mktemp -d /tmp/myha-nonroot-XXXX)
out=/tmp/myha-nonroot.out
trap 'rm -rf "$dir"' EXIT
go test -c -race -o "$dir/integration.test" ./test/integration
go build -race -o "$dir/myha" ./cmd/myha
chmod -R a+rX "$dir"
cd test/integration
set +e
runuser -u "$user" -- env HOME="$(getent passwd "$user" | cut -d: -f6)" PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  MYHA_TEST_BIN="$dir/myha" "$dir/integration.test" -test.timeout 30m -test.v "$@" >"$out" 2>&1
rc=$?
grep -E '^(--- |PASS|FAIL|ok)|^\s+\S+_test.go:[0-9]+: ' "$out" | grep -v '^\s\+.*_test.go.*: .*read_only=' | head -400
echo "test-nonroot: exit $rc (full output: $out)"
exit $rc
