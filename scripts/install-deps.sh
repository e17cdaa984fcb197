#!/bin/bash
# Install the Debian packages diplom needs to build and test, if missing.
# Run as root on Debian 12; does nothing when all are present.
set -e
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../tests/lib.sh"

PKGS="build-essential autoconf automake pkgconf
libmicrohttpd-dev libjson-c-dev libsqlite3-dev libcurl4-openssl-dev uuid-dev
libnats-dev check nats-server sqlite3 curl jq python3 python3-yaml
python3-jsonschema wrk apache2-utils e2fsprogs nftables libsystemd-dev prometheus
libgnutls28-dev openssl python3-cryptography"
# npm, for the OpenAPI linter tests/openapi.sh installs: Debian's, unless
# one is there already (a Node.js from elsewhere brings its own, and its
# package conflicts with Debian's npm)
command -v npm >/dev/null 2>&1 || PKGS="$PKGS nodejs npm"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	say "install-deps: missing packages:$missing (run as root, or install them)"
	exit 1
fi
say "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
