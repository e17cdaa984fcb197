#!/bin/bash
# test-package.sh - build the Debian package and test it the way a user runs
# it: apt-get install into a Debian 12 system booted with a real systemd
# (../shared/tools/systemd-sandbox), systemctl start diplom.target, messages
# through the gateway, restarts under load, the switch to NATS, purge.
#
#   scripts/test-package.sh [DEB]
#
# DEB: test this package instead of building one.  Needs root, network for
# apt, and ports 8080-8082 and 4222 free on this host: the sandbox shares
# the host's network.  Prints TAP; exits non-zero when a check fails.
# Environment: DIPLOM_SANDBOX (the sandbox directory, /var/tmp/diplom-sbx),
# SYSTEMD_SANDBOX (the tool), KEEP_SANDBOX=1 (leave it running to look
# around), DEB_BUILD_OPTIONS (default nocheck: make check runs on its own in
# CI; this script tests the installed package).
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
sandbox_tool=${SYSTEMD_SANDBOX:-$top/../shared/tools/systemd-sandbox}
sbx=${DIPLOM_SANDBOX:-/var/tmp/diplom-sbx}
gw=http://127.0.0.1:8080
work=$(mktemp -d "${TMPDIR:-/tmp}/diplom-pkg.XXXXXX")
started=$(date +%s)
n=0
failed=0
load_pids=""

# --- TAP helpers -----------------------------------------------------------

ok() {
	n=$((n + 1))
	echo "ok $n - $1"
}

not_ok() {
	n=$((n + 1))
	failed=1
	echo "not ok $n - $1"
}

# check DESC CMD... : one TAP line for CMD's success
check() {
	local desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

# bail REASON : later checks make no sense; the trap still cleans up
bail() {
	failed=1
	echo "Bail out! $*"
	exit 1
}

note() { echo "# $*"; }

# --- cleanup on every exit path ---------------------------------------------

cleanup() {
	local rc=$? p
	for p in $load_pids; do
		kill "$p" 2>/dev/null || true
	done
	if [ "$failed" -ne 0 ] && [ -x "$sandbox_tool" ]; then
		note "journal of the diplom units (last lines):"
		sb 'journalctl --no-pager -n 60 -u "diplomd@*" -u diplom-nats' \
			2>/dev/null | sed 's/^/#   /' || true
	fi
	if [ -z "${KEEP_SANDBOX:-}" ] && [ -x "$sandbox_tool" ]; then
		"$sandbox_tool" down "$sbx" >/dev/null 2>&1 || true
	fi
	rm -rf "$work"
	echo "1..$n"
	note "runtime $(($(date +%s) - started)) s"
	if [ "$failed" -ne 0 ] || [ "$rc" -ne 0 ]; then
		note "FAIL"
		exit 1
	fi
	note "PASS"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# sb CMD : run CMD (a bash command line) inside the sandbox
sb() { "$sandbox_tool" run "$sbx" "$1"; }

# --- preflight ------------------------------------------------------------

[ "$(id -u)" = 0 ] || bail "needs root (the sandbox does)"
[ -x "$sandbox_tool" ] || bail "$sandbox_tool not found"

# The sandbox shares the host's network: a port taken here would make the
# packaged units fail for reasons that have nothing to do with the package.
port_busy() {
	local hex
	hex=$(printf ':%04X ' "$1")
	grep -q "$hex.* 0A " /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
for port in 8080 8081 8082 4222; do
	port_busy "$port" && bail "port $port is in use on this host"
done

# --- build ------------------------------------------------------------------

if [ $# -ge 1 ]; then
	deb=$(readlink -f "$1")
	[ -f "$deb" ] || bail "$deb not found"
else
	# Build in a copy: dpkg-buildpackage writes its results to the parent
	# directory, and the copy leaves the developer's configured tree alone.
	# Build products of an in-tree build are left out so that debhelper
	# configures from scratch.
	src=$work/diplom
	mkdir -p "$src"
	tar -C "$top" -cf - \
		--exclude=.git --exclude=autom4te.cache --exclude=.deps \
		--exclude='*.o' --exclude='*.a' --exclude=.dirstamp \
		--exclude=./Makefile --exclude=./config.status \
		--exclude=./config.log --exclude=./config.h --exclude=./stamp-h1 \
		--exclude=./src/diplomd --exclude=./src/loadgen/diplom-loadgen \
		--exclude='./tests/*.log' --exclude='./tests/*.trs' \
		--exclude=./debian/diplom --exclude=./debian/.debhelper \
		--exclude=./debian/files --exclude='./debian/*.substvars' \
		--exclude='./debian/*.log' \
		--exclude=./debian/debhelper-build-stamp \
		. | tar -C "$src" -xf -
	note "building the package in $src"
	if ! (cd "$src" &&
	    DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS-nocheck parallel=2} \
	    dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1; then
		tail -n 40 "$work/build.log" | sed 's/^/#   /'
		not_ok "dpkg-buildpackage -us -uc -b builds the package"
		bail "no package to test"
	fi
	deb=$(ls "$work"/diplom_*.deb)
	ok "dpkg-buildpackage -us -uc -b builds $(basename "$deb")"
fi

# --- sandbox ------------------------------------------------------------------

if ! "$sandbox_tool" up "$sbx" >"$work/up.log" 2>&1; then
	sed 's/^/#   /' "$work/up.log"
	bail "systemd-sandbox up $sbx failed"
fi
note "$(tail -n 1 "$work/up.log")"
# a sandbox directory is reused between runs: start from a system that has
# never seen diplom or nats-server
# (dpkg, not apt-get: apt refuses a package name it cannot locate)
sb 'dpkg --purge diplom nats-server >/dev/null 2>&1 || true
    rm -rf /var/lib/diplom /var/lib/diplom-nats /var/lib/private/diplom-nats \
	/root/diplom_*.deb
    systemctl reset-failed >/dev/null 2>&1 || true'
"$sandbox_tool" copy "$sbx" "$deb"
debname=$(basename "$deb")

# apt needs package lists for the dependencies; refresh them once a day
sb 'find /var/lib/apt/lists -maxdepth 1 -name "*Packages*" -mtime -1 |
    grep -q . || apt-get update -q >/dev/null' || bail "apt-get update failed"

# without Recommends, so that the memory phase runs without nats-server
if sb "apt-get install -y -q --no-install-recommends /root/$debname" \
    >"$work/install.log" 2>&1; then
	ok "apt-get install ./$debname"
else
	sed 's/^/#   /' "$work/install.log"
	not_ok "apt-get install ./$debname"
	bail "package did not install"
fi

check "the system user diplom exists" sb 'getent passwd diplom >/dev/null'
check "/etc/default/diplom is a conffile setting RESULTS_DB" \
	sb 'grep -qx /etc/default/diplom /var/lib/dpkg/info/diplom.conffiles &&
	    grep -qx RESULTS_DB=/var/lib/diplom/results.db /etc/default/diplom'
check "systemctl start diplom.target" sb 'systemctl start diplom.target'

# wait_health PORT... : every role answers /health 200 within 10 s
wait_health() {
	local port i
	for port in "$@"; do
		for i in $(seq 100); do
			[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
			    "http://127.0.0.1:$port/health")" = 200 ] && break
			[ "$i" = 100 ] && return 1
			sleep 0.1
		done
	done
	return 0
}

roles_active() {
	sb 'systemctl is-active --quiet diplomd@gateway diplomd@ingest \
	    diplomd@processor'
}
check "the three diplomd@ units are active" roles_active
check "every role answers /health from outside" wait_health 8080 8081 8082

# verify_units UNIT... : systemd-analyze verify prints nothing for units
# without problems (the sandbox has no man-db to resolve Documentation=:
# the manual pages are checked separately)
verify_units() {
	local out
	out=$(sb "systemd-analyze verify --man=no $* 2>&1") || true
	[ -z "$out" ] && return 0
	echo "$out" | sed 's/^/#   /'
	! echo "$out" | grep -q diplom
}
check "systemd-analyze verify is clean for diplom.target and diplomd@" \
	verify_units diplom.target diplomd@gateway.service \
	diplomd@ingest.service diplomd@processor.service
# diplom-loadgen comes with the package once src/loadgen/local.mk builds it
if sb 'test -x /usr/bin/diplom-loadgen'; then
	check "/usr/bin/diplom-loadgen runs" \
		sb '/usr/bin/diplom-loadgen --version >/dev/null'
else
	ok "/usr/bin/diplom-loadgen runs # SKIP not in this package yet"
fi
check "Documentation=man:diplomd(8) is installed, with diplom-loadgen(1)" \
	sb 'test -e /usr/share/man/man8/diplomd.8.gz &&
	    test -e /usr/share/man/man1/diplom-loadgen.1.gz'

# post_one FILE : one post through the gateway; appends the message id to
# FILE when it was accepted (200).  A 503 while a role restarts is allowed:
# only an accepted message must never be lost.
post_one() {
	local body
	body=$(curl -s --max-time 10 -w '\n%{http_code}' \
	    -H 'Content-Type: application/json' \
	    -d "{\"source\":\"pkgtest\",\"data\":\"m$RANDOM$RANDOM\"}" \
	    "$gw/api/v1/ingest") || return 0
	[ "${body##*$'\n'}" = 200 ] || return 0
	echo "${body%$'\n'*}" | jq -r .message_id >>"$1"
}

# post_messages COUNT FILE : COUNT sequential posts
post_messages() {
	local i
	for i in $(seq "$1"); do
		post_one "$2"
	done
}

# post_for SECONDS FILE : sequential posts for SECONDS
post_for() {
	local end=$(($(date +%s) + $1))
	while [ "$(date +%s)" -lt "$end" ]; do
		post_one "$2"
	done
}

# all_processed FILE [SECONDS] : every id in FILE has a stored result; the
# processor may still be working through a backlog, so poll
all_processed() {
	local file=$1 secs=${2:-30} id missing i
	[ -s "$file" ] || { note "no accepted message to look for"; return 1; }
	for i in $(seq "$secs"); do
		missing=0
		while read -r id; do
			[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
			    "$gw/api/v1/messages/$id")" = 200 ] || missing=$((missing + 1))
		done <"$file"
		[ "$missing" = 0 ] && return 0
		sleep 1
	done
	note "$missing of $(wc -l <"$file") accepted messages have no result"
	return 1
}

# results_ok FILE : each stored result is the processed payload, delivered
# once into one row (spot check of the first ten)
results_ok() {
	local id
	[ -s "$1" ] || return 1
	for id in $(head -n 10 "$1"); do
		curl -s "$gw/api/v1/messages/$id" |
		    jq -e '.success == true and (.result | startswith("PROCESSED_"))' \
		    >/dev/null || return 1
	done
}

# restart_under_load FILE : four posting loops while the processor restarts
restart_under_load() {
	local file=$1 w rc=0
	load_pids=""
	for w in 1 2 3 4; do
		post_for 4 "$file.$w" &
		load_pids="$load_pids $!"
	done
	sleep 1
	sb 'systemctl restart diplomd@processor' || rc=1
	for w in $load_pids; do
		wait "$w" || true
	done
	load_pids=""
	cat "$file".? >>"$file" 2>/dev/null || true
	rm -f "$file".?
	note "$(wc -l <"$file") messages accepted during the restart"
	return $rc
}

# journal_has_daemon_lines UNIT : the daemon's own stderr reached the journal
journal_has_daemon_lines() {
	sb "journalctl --no-pager -q -u $1 _COMM=diplomd | grep -q ."
}

# --- memory backend -----------------------------------------------------------

ids=$work/memory.ids
: >"$ids"
post_messages 100 "$ids"
check "100 messages posted through the gateway are accepted" \
	test "$(wc -l <"$ids")" = 100
check "GET /api/v1/messages/{id} returns each of them" all_processed "$ids"
check "the stored results are processed payloads" results_ok "$ids"

ids=$work/memory-restart.ids
: >"$ids"
check "systemctl restart diplomd@processor under load" \
	restart_under_load "$ids"
check "no message accepted during the processor restart is lost" \
	all_processed "$ids"
check "the processor is active again" \
	sb 'systemctl is-active --quiet diplomd@processor'
check "journalctl -u diplomd@processor shows the daemon's lines" \
	journal_has_daemon_lines diplomd@processor
check "the memory stack runs no broker" \
	sb '! systemctl is-active --quiet diplom-nats.service'

# --- NATS backend -------------------------------------------------------------

if sb 'apt-get install -y -q nats-server' >"$work/nats.log" 2>&1; then
	ok "apt-get install nats-server"
else
	sed 's/^/#   /' "$work/nats.log"
	not_ok "apt-get install nats-server"
	bail "no nats-server"
fi
sb 'sed -i "s/^#\?QUEUE_TYPE=.*/QUEUE_TYPE=nats/" /etc/default/diplom'
check "systemctl restart diplom.target with QUEUE_TYPE=nats" \
	sb 'systemctl restart diplom.target'
check "diplom-nats.service replaced Debian's nats-server.service" \
	sb 'systemctl is-active --quiet diplom-nats.service &&
	    ! systemctl is-active --quiet nats-server.service'
check "every role is healthy on NATS" wait_health 8080 8081 8082
# only now: verify checks that ExecStart's nats-server exists
check "systemd-analyze verify is clean for diplom-nats.service" \
	verify_units diplom-nats.service

ids=$work/nats.ids
: >"$ids"
post_messages 100 "$ids"
check "100 messages posted through the gateway are accepted on NATS" \
	test "$(wc -l <"$ids")" = 100
check "GET /api/v1/messages/{id} returns each of them" all_processed "$ids"
check "the stored results are processed payloads" results_ok "$ids"

# NATS decouples ingest from the processor: accepting goes on while it is
# stopped, and the backlog is processed when it returns
ids=$work/nats-stopped.ids
: >"$ids"
sb 'systemctl stop diplomd@processor'
post_messages 50 "$ids"
check "ingest accepts all 50 messages while the processor is stopped" \
	test "$(wc -l <"$ids")" = 50
sb 'systemctl start diplomd@processor'
check "the processor works through that backlog after its start" \
	all_processed "$ids"

ids=$work/nats-restart.ids
: >"$ids"
check "systemctl restart diplomd@processor under load on NATS" \
	restart_under_load "$ids"
check "no message accepted during the restart is lost on NATS" \
	all_processed "$ids"

# --- hardening ----------------------------------------------------------------

exposure() {
	sb "systemd-analyze security --offline=true /lib/systemd/system/$1 \
	    2>/dev/null | sed -n 's/.*Overall exposure level for \(.*\)/\1/p'"
}
for unit in diplomd@.service diplom-nats.service; do
	level=$(exposure "$unit")
	note "systemd-analyze security --offline=true $unit: $level"
	check "$unit exposure is below 2.0" \
		awk -v l="$level" 'BEGIN { split(l, a, ": "); exit !(a[2] + 0 < 2.0) }'
done

# --- purge ------------------------------------------------------------------

no_diplomd_running() {
	sb 'for c in /proc/[0-9]*/comm; do
	        [ "$(cat "$c" 2>/dev/null)" = diplomd ] && exit 1
	    done; exit 0'
}
check "apt-get purge diplom" sb 'apt-get purge -y -q diplom >/dev/null'
check "no diplom unit is active after the purge" \
	sb '! systemctl is-active --quiet diplomd@gateway diplomd@ingest \
	    diplomd@processor diplom-nats diplom.target'
check "no diplomd process is left" no_diplomd_running
check "the purge removed /var/lib/diplom and /etc/default/diplom" \
	sb '[ ! -e /var/lib/diplom ] && [ ! -e /etc/default/diplom ]'
