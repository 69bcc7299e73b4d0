#!/usr/bin/env bash
# Installs what a make target needs on Debian 12, only when missing.
#   install-deps.sh demo   MariaDB 10.11 server and client, iproute2 (network namespaces)
#   install-deps.sh test   the same, plus gcc (go test -race), haproxy (the health-check
#                          tests), nftables (packet-drop partitions), prometheus
#                          (promtool checks the shipped alert rules), systemd (systemd-analyze
#                          checks the units), etcd (topology publishing) and chromium (the web
#                          page's tests drive a headless browser)
# Safe to run repeatedly; does nothing when all is present.
set -euo pipefail

target=${1:-test}
case "$target" in demo|test) ;; *) echo "install-deps: unknown target $target (demo or test)" >&2; exit 2 ;; esac
need=()
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
command -v mariadb >/dev/null 2>&1 || need+=(mariadb-client)
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || need+=(iproute2)
if [ "$target" = test ]; then
  command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)
  command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
  command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || need+=(nftables)
  command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
  command -v promtool >/dev/null 2>&1 || need+=(prometheus)
  command -v etcd >/dev/null 2>&1 || [ -x /usr/bin/etcd ] || need+=(etcd-server)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
fi

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing ${need[*]}; run as root or: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "install-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The package starts a system mariadbd we do not use; labs run their own.
for svc in mariadb haproxy prometheus etcd; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done
# Without systemd the prometheus package's init script may have started a
# server on :9090 we do not use (only its promtool is needed).
case " ${need[*]} " in *" prometheus "*) pkill -x prometheus 2>/dev/null || true ;; esac
case " ${need[*]} " in *" etcd-server "*) pkill -x etcd 2>/dev/null || true ;; esac
