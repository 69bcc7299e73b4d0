#!/usr/bin/env bash
# make package: a Debian package, bin/myha_<version>_<arch>.deb, built with
# dpkg-deb from a staged tree: the static binary in /usr/bin, the systemd
# units, the example config and docs, and maintainer scripts that make the
# `myha` system user and its state directory. No config is installed: a
# deployment writes /etc/myha/myha.yaml (myha config check validates it).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
debver=$version
[[ $debver =~ ^[0-9] ]] || debver="0.0~git${version//[^A-Za-z0-9.+~]/.}" # Debian versions start with a digit
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
chmod 0755 "$stage"
mkdir -p "$stage/DEBIAN" "$stage/usr/bin" "$stage/lib/systemd/system" "$stage/etc/myha" "$stage/usr/share/doc/myha"
CGO_ENABLED=0 go build -trimpath -ldflags "-X main.version=$version" -o "$stage/usr/bin/myha" ./cmd/myha
for u in config/systemd/*.service; do
  sed 's|/usr/local/bin/myha|/usr/bin/myha|g' "$u" >"$stage/lib/systemd/system/$(basename "$u")"
done
install -m 0644 config/example.yaml "$stage/usr/share/doc/myha/example.yaml"
install -m 0644 LICENSE README.md "$stage/usr/share/doc/myha/"
size=$(du -sk "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<CONTROL
Package: myha
Version: $debver
Architecture: $arch
Maintainer: The myha authors <myha@localhost>
Installed-Size: $size
Section: database
Priority: optional
Homepage: https://github.com/myha/myha
Description: high availability for MySQL and MariaDB replication
 Monitors (myha daemon) agree by quorum that a primary is dead, promote the
 most advanced replica, repoint the others, fence the old primary and move
 the virtual IP; agents (myha agent) hold the VIP and serve HAProxy health
 checks. Example configuration in /usr/share/doc/myha/example.yaml.
CONTROL
cat >"$stage/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  if ! getent passwd myha >/dev/null; then
    useradd --system --user-group --home-dir /var/lib/myha --no-create-home --shell /usr/sbin/nologin myha
  fi
  install -d -o myha -g myha -m 0700 /var/lib/myha
  chown root:myha /etc/myha
  chmod 0750 /etc/myha
  if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
fi
POSTINST
cat >"$stage/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
if [ "$1" = purge ]; then
  rm -rf /var/lib/myha
  if getent passwd myha >/dev/null; then userdel myha || true; fi
fi
if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
POSTRM
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/postrm"
mkdir -p bin
out="bin/myha_${debver}_${arch}.deb"
dpkg-deb --root-owner-group --build "$stage" "$out" >/dev/null
echo "$out"
