#!/bin/bash
# test-package.sh - build the Debian package and test it the way a user runs
# it: apt-get install into a Debian 12 system booted with a real systemd
# (../shared/tools/systemd-sandbox), systemctl start diplom.target, messages
# through the gateway, restarts under load, diplomctl's switch to NATS and
# back under load, the broker's password (made at install, a publish
# without it refused), least privilege (/etc/diplom, resource limits,
# reload, the internal token as a systemd credential, exposure), purge.
#
#   scripts/test-package.sh [DEB]
#
# DEB: test this package instead of building one.  Needs root, network for
# apt, and ports 8080-8082 and 4222 free on this host: the sandbox shares
# the host's network.  Prints TAP; exits non-zero when a check fails.
# Environment: DIPLOM_SANDBOX (the sandbox directory, /var/tmp/diplom-sbx),
# DIPLOM_KEEP_DEB (a directory to copy the built package to),
# SYSTEMD_SANDBOX (the tool), KEEP_SANDBOX=1 (leave it running to look
# around), DEB_BUILD_OPTIONS (default nocheck: make check runs on its own in
# CI; this script tests the installed package).
set -e
# The harness (TAP, cleanup, the host-side HTTP helpers); what runs inside
# the sandbox is the command lines given to sb, which need nothing from it.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../tests/lib.sh"

sandbox_tool=${SYSTEMD_SANDBOX:-$top_srcdir/../shared/tools/systemd-sandbox}
sbx=${DIPLOM_SANDBOX:-/var/tmp/diplom-sbx}
# the packaged units listen on the default ports
GW=http://127.0.0.1:8080
# below $T_TMP, so that the harness does not take build.log for a daemon's
work=$T_TMP/pkg
mkdir "$work"
started=$(date +%s)
tap_plan

# --- at exit, before the harness ends what it tracked -----------------------

# sandbox_at_exit STATUS : the units' journal when something failed, the
# sandbox down, and the verdict
sandbox_at_exit() {
	local rc=$1
	if [ "$T_FAILED" -ne 0 ] && [ -x "$sandbox_tool" ]; then
		tap_note "journal of the diplom units (last lines):"
		sb 'journalctl --no-pager -n 60 -u "diplomd@*" -u diplom-nats' \
			2>/dev/null | sed 's/^/#   /'
	fi
	if [ -z "${KEEP_SANDBOX:-}" ] && [ -x "$sandbox_tool" ]; then
		"$sandbox_tool" down "$sbx" >/dev/null 2>&1
	fi
	tap_note "runtime $(($(date +%s) - started)) s"
	if [ "$T_FAILED" -ne 0 ] || [ "$rc" -ne 0 ]; then
		tap_note "FAIL"
		T_FAILED=1
	else
		tap_note "PASS"
	fi
}
T_AT_EXIT=sandbox_at_exit

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
	tap_note "building the package from $top_srcdir"
	if ! deb_build "$top_srcdir" "$work/new" >"$work/build.log" 2>&1; then
		tail -n 40 "$work/build.log" | sed 's/^/#   /'
		tap_fail "dpkg-buildpackage -us -uc -b builds the package"
		bail "no package to test"
	fi
	deb=$(ls "$work"/new/diplom_*.deb)
	tap_pass "dpkg-buildpackage -us -uc -b builds $(basename "$deb")"
	# for scripts/test-upgrade.sh, which installs it over an older one
	if [ -n "${DIPLOM_KEEP_DEB:-}" ]; then
		cp "$deb" "$DIPLOM_KEEP_DEB/"
	fi
fi

# --- sandbox ------------------------------------------------------------------

if ! "$sandbox_tool" up "$sbx" >"$work/up.log" 2>&1; then
	sed 's/^/#   /' "$work/up.log"
	bail "systemd-sandbox up $sbx failed"
fi
tap_note "$(tail -n 1 "$work/up.log")"
# a sandbox directory is reused between runs: start from a system that has
# never seen diplom or nats-server
# (dpkg, not apt-get: apt refuses a package name it cannot locate)
sb 'dpkg --purge diplom nats-server >/dev/null 2>&1 || true
    rm -rf /var/lib/diplom /var/lib/diplom-nats /var/lib/private/diplom-nats \
	/root/diplom_*.deb /etc/diplom /etc/systemd/system/diplomd@*.service.d \
	/run/systemd/system/diplomd@*.service.d
    systemctl daemon-reload
    systemctl reset-failed >/dev/null 2>&1 || true'
"$sandbox_tool" copy "$sbx" "$deb"
debname=$(basename "$deb")

# apt needs package lists for the dependencies; refresh them once a day
sb 'find /var/lib/apt/lists -maxdepth 1 -name "*Packages*" -mtime -1 |
    grep -q . || apt-get update -q >/dev/null' || bail "apt-get update failed"

# without Recommends, so that the memory phase runs without nats-server
if sb "apt-get install -y -q --no-install-recommends /root/$debname" \
    >"$work/install.log" 2>&1; then
	tap_pass "apt-get install ./$debname"
else
	sed 's/^/#   /' "$work/install.log"
	tap_fail "apt-get install ./$debname"
	bail "package did not install"
fi

tap_ok "the system user diplom exists" sb 'getent passwd diplom >/dev/null'
tap_ok "/etc/default/diplom is a conffile setting RESULTS_DB" \
	sb 'grep -qx /etc/default/diplom /var/lib/dpkg/info/diplom.conffiles &&
	    grep -qx RESULTS_DB=/var/lib/diplom/results.db /etc/default/diplom'
tap_ok "/etc/diplom exists, 0750 root:diplom" \
	sb '[ "$(stat -c "%a %U %G" /etc/diplom)" = "750 root diplom" ]'
# the packaged broker's credentials, made by diplom.postinst: the one
# password in both files, readable by root and the roles' group only
nats_credentials_made() {
	sb 'cd /etc/diplom &&
	    [ "$(stat -c "%a %U %G" nats-password)" = "640 root diplom" ] &&
	    [ "$(stat -c "%a %U %G" diplom-nats.env)" = "640 root diplom" ] &&
	    pw=$(cat nats-password) && [ ${#pw} -ge 32 ] &&
	    [ "$(cat diplom-nats.env)" = "DIPLOM_NATS_PASSWORD=$pw" ]'
}
tap_ok "the broker's password is made at install, 0640 root:diplom" \
	nats_credentials_made
tap_ok "the roles log in with it: diplomd@ sets NATS_USER, NATS_PASSWORD_FILE" \
	sb 'systemctl show -p Environment diplomd@ingest |
	    grep -q "NATS_USER=diplom NATS_PASSWORD_FILE=/etc/diplom/nats-password"'
tap_ok "/etc/default/diplom bounds the result store: RESULTS_MAX_BYTES=1 GiB" \
	sb 'grep -qx RESULTS_MAX_BYTES=1073741824 /etc/default/diplom'
tap_ok "/etc/default/diplom sets no secret, names files in /etc/diplom" \
	sb '! grep -Eq "^(INTERNAL_TOKEN|NATS_PASSWORD|NATS_TOKEN)=" \
		/etc/default/diplom &&
	    grep -qx "#INTERNAL_TOKEN_FILE=/etc/diplom/internal-token" \
		/etc/default/diplom'
tap_ok "SECURITY.md and the examples are in /usr/share/doc/diplom" \
	sb 'cd /usr/share/doc/diplom && ls SECURITY.md* >/dev/null &&
	    test -f examples/diplomd-security.conf &&
	    test -f examples/diplomd-gateway-security.conf &&
	    test -f examples/prometheus.yml'
tap_ok "systemctl start diplom.target" sb 'systemctl start diplom.target'

# roles_healthy : every role answers /health 200 within 10 s
roles_healthy() {
	wait_health "$GW" && wait_health http://127.0.0.1:8081 &&
		wait_health http://127.0.0.1:8082
}

roles_active() {
	sb 'systemctl is-active --quiet diplomd@gateway diplomd@ingest \
	    diplomd@processor'
}
tap_ok "the three diplomd@ units are active" roles_active
# Type=notify: the start returned once each role said READY=1, so each
# answers at once, without the waiting roles_healthy allows
healthy_now() {
	local port
	for port in 8080 8081 8082; do
		curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$port/health" ||
			return 1
	done
}
tap_ok "when systemctl start returns, every role answers /health" healthy_now
tap_ok "every role answers /health from outside" roles_healthy
tap_ok "each role tells systemd what it does (StatusText)" \
	sb 'sleep 11; systemctl show -p StatusText diplomd@processor |
	    grep -q "backlog [0-9]*, [0-9]* messages/s" &&
	    systemctl show -p StatusText diplomd@gateway | grep -q "requests/s"'
# journald keeps each line's priority: -p warning leaves out info lines
priorities() {
	sb 'journalctl --no-pager -q -u diplomd@ingest -p info | grep -q started &&
	    ! journalctl --no-pager -q -u diplomd@ingest -p warning |
		grep -q started'
}
tap_ok "journalctl -p filters the daemon's lines by priority" priorities

# watchdog_restarts : a role stopped with SIGSTOP stops answering the
# watchdog's pings and systemd restarts it (WatchdogSec=4s for the test)
watchdog_restarts() {
	local pid newpid t0 i
	sb 'mkdir -p /run/systemd/system/diplomd@ingest.service.d &&
	    printf "[Service]\nWatchdogSec=4s\n" \
		>/run/systemd/system/diplomd@ingest.service.d/watchdog.conf &&
	    systemctl daemon-reload && systemctl restart diplomd@ingest' ||
		return 1
	pid=$(sb 'systemctl show -p MainPID --value diplomd@ingest')
	t0=$(date +%s)
	sb "kill -STOP $pid" || return 1
	for i in $(seq 30); do
		newpid=$(sb 'systemctl show -p MainPID --value diplomd@ingest')
		if [ -n "$newpid" ] && [ "$newpid" != 0 ] && [ "$newpid" != "$pid" ] &&
		    sb 'systemctl is-active --quiet diplomd@ingest'; then
			tap_note "SIGSTOP to a new ingest process: $(($(date +%s) - t0)) s"
			break
		fi
		sleep 1
	done
	sb 'rm -rf /run/systemd/system/diplomd@ingest.service.d &&
	    systemctl daemon-reload && systemctl restart diplomd@ingest'
	[ -n "$newpid" ] && [ "$newpid" != "$pid" ] && [ "$i" -lt 30 ]
}
tap_ok "the watchdog restarts a role stopped with SIGSTOP" watchdog_restarts
tap_ok "the journal says the watchdog did it" \
	sb 'journalctl --no-pager -q -u diplomd@ingest | grep -q -i watchdog'
tap_ok "every role answers /health again" roles_healthy

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
tap_ok "systemd-analyze verify is clean for diplom.target and diplomd@" \
	verify_units diplom.target diplomd@gateway.service \
	diplomd@ingest.service diplomd@processor.service
# diplom-loadgen comes with the package once src/loadgen/local.mk builds it
if sb 'test -x /usr/bin/diplom-loadgen'; then
	tap_ok "/usr/bin/diplom-loadgen runs" \
		sb '/usr/bin/diplom-loadgen --version >/dev/null'
else
	tap_pass "/usr/bin/diplom-loadgen runs # SKIP not in this package yet"
fi
tap_ok "Documentation=man:diplomd(8) is installed, with diplom-loadgen(1)" \
	sb 'test -e /usr/share/man/man8/diplomd.8.gz &&
	    test -e /usr/share/man/man1/diplom-loadgen.1.gz'
tap_ok "/usr/sbin/diplomctl and diplomctl(8) are installed" \
	sb '/usr/sbin/diplomctl --version >/dev/null &&
	    test -e /usr/share/man/man8/diplomctl.8.gz'
tap_ok "diplomctl status reads /etc/default/diplom and exits 0" \
	sb 'diplomctl status --interval 0 >/root/status.out 2>&1; rc=$?
	    sed "s/^/#   /" /root/status.out; [ $rc = 0 ]'
tap_ok "diplomctl switch nats refuses without a broker (exit 1)" \
	sb 'cp /etc/default/diplom /root/default.before
	    diplomctl switch nats >/root/switch.out 2>&1; rc=$?
	    sed "s/^/#   /" /root/switch.out; [ $rc = 1 ] &&
	    cmp -s /etc/default/diplom /root/default.before'

# post_accepted FILE : one post through the gateway; appends the message id
# to FILE when it was accepted (200).  A 503 while a role restarts is
# allowed: only an accepted message must never be lost.
post_accepted() {
	local code id
	read -r code id <<<"$(ingest_one "m$RANDOM$RANDOM")"
	if [ "$code" = 200 ] && [ "$id" != - ]; then
		echo "$id" >>"$1"
	fi
}

# post_messages COUNT FILE : COUNT sequential posts
post_messages() {
	local i
	for i in $(seq "$1"); do
		post_accepted "$2"
	done
}

# post_for SECONDS FILE : sequential posts for SECONDS
post_for() {
	local end=$(($(date +%s) + $1))
	while [ "$(date +%s)" -lt "$end" ]; do
		post_accepted "$2"
	done
}

# ids_have_results FILE [SECONDS] : every id in FILE has a stored result;
# the processor may still be working through a backlog, so poll
ids_have_results() {
	local file=$1 secs=${2:-30} id missing i
	[ -s "$file" ] || { tap_note "no accepted message to look for"; return 1; }
	for i in $(seq "$secs"); do
		missing=0
		while read -r id; do
			[ "$(http_code "$GW/api/v1/messages/$id")" = 200 ] ||
				missing=$((missing + 1))
		done <"$file"
		[ "$missing" = 0 ] && return 0
		sleep 1
	done
	tap_note "$missing of $(wc -l <"$file") accepted messages have no result"
	return 1
}

# results_ok FILE : each stored result is the processed payload, delivered
# once into one row (spot check of the first ten)
results_ok() {
	local id
	[ -s "$1" ] || return 1
	for id in $(head -n 10 "$1"); do
		curl -s "$GW/api/v1/messages/$id" |
		    jq -e '.success == true and (.result | startswith("PROCESSED_"))' \
		    >/dev/null || return 1
	done
}

# restart_under_load FILE : four posting loops while the processor restarts
restart_under_load() {
	local file=$1 w rc=0 pids=""
	for w in 1 2 3 4; do
		post_for 4 "$file.$w" &
		pids="$pids $!"
		track "$!"
	done
	sleep 1
	sb 'systemctl restart diplomd@processor' || rc=1
	for w in $pids; do
		wait "$w" || true
		untrack "$w"
	done
	cat "$file".? >>"$file" 2>/dev/null || true
	rm -f "$file".?
	tap_note "$(wc -l <"$file") messages accepted during the restart"
	return $rc
}

# journal_has_daemon_lines UNIT : the daemon's own stderr reached the journal
journal_has_daemon_lines() {
	sb "journalctl --no-pager -q -u $1 _COMM=diplomd | grep -q ."
}

# through_gateway NAME [WHERE] : 100 messages through the gateway, every
# one accepted, found by id and processed (WHERE ends the first check's name)
through_gateway() {
	local ids=$work/$1.ids
	: >"$ids"
	post_messages 100 "$ids"
	tap_ok "100 messages posted through the gateway are accepted${2:-}" \
		test "$(wc -l <"$ids")" = 100
	tap_ok "GET /api/v1/messages/{id} returns each of them" \
		ids_have_results "$ids"
	tap_ok "the stored results are processed payloads" results_ok "$ids"
}

# --- memory backend -----------------------------------------------------------

through_gateway memory

ids=$work/memory-restart.ids
: >"$ids"
tap_ok "systemctl restart diplomd@processor under load" \
	restart_under_load "$ids"
tap_ok "no message accepted during the processor restart is lost" \
	ids_have_results "$ids"
tap_ok "the processor is active again" \
	sb 'systemctl is-active --quiet diplomd@processor'
tap_ok "journalctl -u diplomd@processor shows the daemon's lines" \
	journal_has_daemon_lines diplomd@processor
tap_ok "the memory stack runs no broker" \
	sb '! systemctl is-active --quiet diplom-nats.service'

# --- NATS backend -------------------------------------------------------------

if sb 'apt-get install -y -q nats-server' >"$work/nats.log" 2>&1; then
	tap_pass "apt-get install nats-server"
else
	sed 's/^/#   /' "$work/nats.log"
	tap_fail "apt-get install nats-server"
	bail "no nats-server"
fi
# Debian's nats-server.service, if it runs, has no JetStream: not a target
tap_ok "diplomctl switch nats refuses without a JetStream broker (exit 1)" \
	sb 'cp /etc/default/diplom /root/default.before
	    diplomctl switch nats >/root/switch.out 2>&1; rc=$?
	    sed "s/^/#   /" /root/switch.out; [ $rc = 1 ] &&
	    grep -q "no NATS server with JetStream" /root/switch.out'
tap_ok "and changes nothing: the default file, the units" \
	sb 'cmp -s /etc/default/diplom /root/default.before &&
	    systemctl is-active --quiet diplomd@ingest diplomd@processor'
ids=$work/switch-nats.ids
: >"$ids"
post_for 12 "$ids" &
poster=$!
track "$poster"
sleep 1
tap_ok "systemctl start diplom-nats.service; diplomctl switch nats" \
	sb 'systemctl start diplom-nats.service &&
	    diplomctl switch nats >/root/switch.out 2>&1; rc=$?
	    sed "s/^/#   /" /root/switch.out; exit $rc'
wait "$poster" || true
untrack "$poster"
tap_note "$(wc -l <"$ids") messages accepted during the switch"
tap_ok "no message accepted during the switch to NATS is lost" \
	ids_have_results "$ids"
tap_ok "the switch set QUEUE_TYPE=nats and kept every other line" \
	sb 'grep -qx QUEUE_TYPE=nats /etc/default/diplom &&
	    diff /root/default.before /etc/default/diplom |
		grep "^[<>]" | sort | tr "\n" " " |
		grep -qx "> QUEUE_TYPE=nats "'
tap_ok "diplom-nats.service replaced Debian's nats-server.service" \
	sb 'systemctl is-active --quiet diplom-nats.service &&
	    ! systemctl is-active --quiet nats-server.service'
tap_ok "every role is healthy on NATS" roles_healthy
# only now: verify checks that ExecStart's nats-server exists
tap_ok "systemd-analyze verify is clean for diplom-nats.service" \
	verify_units diplom-nats.service

through_gateway nats " on NATS"

# refused ANSWER : tap-noted, the broker's refusal
refused() {
	tap_note "the broker answers: $1"
	[ "$1" = "-ERR 'Authorization Violation'" ]
}
pw=$(cat "$sbx/etc/diplom/nats-password" 2>/dev/null) || pw=
tap_ok "the broker refuses a publish without credentials" \
	refused "$(nats_answer '{"verbose":false,"pedantic":false}')"
tap_ok "and with a wrong password" \
	refused "$(nats_answer '{"verbose":false,"user":"diplom","pass":"guess"}')"
# with it, a ping (no publish: a forged message would be processed)
nats_login() {
	local line=
	exec 3<>/dev/tcp/127.0.0.1/4222 || return 1
	read -r -t 5 line <&3 || true
	printf 'CONNECT {"verbose":false,"user":"diplom","pass":"%s"}\r\nPING\r\n' \
		"$pw" >&3
	read -r -t 5 line <&3 || true
	exec 3>&- 3<&-
	[ "${line%$'\r'}" = PONG ]
}
tap_ok "the password of /etc/diplom/nats-password logs in" nats_login
tap_ok "the password is on neither the broker's nor a role's command line" \
	sb "! grep -qF -- '$pw' /proc/\$(systemctl show -p MainPID --value \
		diplom-nats)/cmdline /proc/\$(systemctl show -p MainPID --value \
		diplomd@ingest)/cmdline"

# NATS decouples ingest from the processor: accepting goes on while it is
# stopped, and the backlog is processed when it returns
ids=$work/nats-stopped.ids
: >"$ids"
sb 'systemctl stop diplomd@processor'
tap_ok "systemctl stop drains the processor: it logs stopped, exits 0" \
	sb 'journalctl --no-pager -q -u diplomd@processor -n 5 | grep -q stopped &&
	    [ "$(systemctl show -p Result --value diplomd@processor)" = success ]'
post_messages 50 "$ids"
tap_ok "ingest accepts all 50 messages while the processor is stopped" \
	test "$(wc -l <"$ids")" = 50
sb 'systemctl start diplomd@processor'
tap_ok "the processor works through that backlog after its start" \
	ids_have_results "$ids"

ids=$work/nats-restart.ids
: >"$ids"
tap_ok "systemctl restart diplomd@processor under load on NATS" \
	restart_under_load "$ids"
tap_ok "no message accepted during the restart is lost on NATS" \
	ids_have_results "$ids"

# --- diplomctl ----------------------------------------------------------------

tap_ok "diplomctl status exits 0 on the packaged system, on nats" \
	sb 'diplomctl status >/root/status.out 2>&1; rc=$?
	    sed "s/^/#   /" /root/status.out; [ $rc = 0 ] &&
	    grep -q "^backend *nats" /root/status.out'
tap_ok "diplomctl status exits 1 while a role is stopped" \
	sb 'systemctl stop diplomd@gateway; diplomctl status --interval 0 \
	    >/dev/null; rc=$?; systemctl start diplomd@gateway; [ $rc = 1 ]'
ids=$work/switch-memory.ids
: >"$ids"
post_for 8 "$ids" &
poster=$!
track "$poster"
sleep 1
tap_ok "diplomctl switch memory, back under load" \
	sb 'diplomctl switch memory >/root/switch.out 2>&1; rc=$?
	    sed "s/^/#   /" /root/switch.out; exit $rc'
wait "$poster" || true
untrack "$poster"
tap_ok "no message accepted during the switch back is lost" \
	ids_have_results "$ids"
tap_ok "the processor runs on memory again" \
	sb 'grep -qx QUEUE_TYPE=memory /etc/default/diplom &&
	    curl -s http://127.0.0.1:8082/admin | grep -q "\"backend\":\"memory\""'

# --- least privilege ----------------------------------------------------------

# main_pid UNIT : the unit's MainPID (0 when it has none)
main_pid() { sb "systemctl show -p MainPID --value $1"; }

# limits_in_effect : the unit's limits, and the processor holds them (its
# descriptors up to the hard limit systemd itself has: a sandbox may have
# less than 131072)
limits_in_effect() {
	local out pid hard want
	out=$(sb 'systemctl show -p MemoryMax,TasksMax,LimitNOFILE \
	    diplomd@processor') || return 1
	tap_note "diplomd@processor: $(echo $out)"
	pid=$(main_pid diplomd@processor)
	hard=$(sb "awk '/^Max open files/ { print \$5 }' /proc/1/limits")
	want=131072
	[ "$hard" != unlimited ] && [ "$hard" -lt "$want" ] && want=$hard
	tap_note "processor: $(sb "grep '^Max open files' /proc/$pid/limits")"
	grep -qx MemoryMax=2147483648 <<<"$out" &&
		grep -qx TasksMax=256 <<<"$out" &&
		grep -qx LimitNOFILE=131072 <<<"$out" &&
		sb "grep -Eq '^Max open files +$want +$want ' /proc/$pid/limits"
}
tap_ok "MemoryMax, TasksMax and LimitNOFILE are in effect for the processor" \
	limits_in_effect
# cgroup_limits : the kernel holds the processor to them (cgroup v2, or the
# v1 pids and memory controllers)
cgroup_limits() {
	local cg
	cg=$(sb 'systemctl show -p ControlGroup --value diplomd@processor')
	sb "cd /sys/fs/cgroup
	    if [ -e .$cg/pids.max ]; then
		[ \"\$(cat .$cg/pids.max)\" = 256 ] &&
		    [ \"\$(cat .$cg/memory.max)\" = 2147483648 ]
	    else
		[ \"\$(cat pids$cg/pids.max)\" = 256 ] &&
		    [ \"\$(cat memory$cg/memory.limit_in_bytes)\" = 2147483648 ]
	    fi"
}
tap_ok "the processor's cgroup has pids.max 256 and a 2 GiB memory limit" \
	cgroup_limits

# exposure_ok UNIT : systemd-analyze security (offline for a unit file, of
# the running unit with its drop-ins otherwise) rates UNIT 2.0 or less
exposure_ok() {
	local level
	case $1 in
	*/*) level=$(sb "systemd-analyze security --offline=true $1 2>/dev/null |
		sed -n 's/.*Overall exposure level for .*: //p'") ;;
	*) level=$(sb "systemd-analyze security $1 2>/dev/null |
		sed -n 's/.*Overall exposure level for .*: //p'") ;;
	esac
	tap_note "systemd-analyze security $1: $level"
	awk -v l="$level" 'BEGIN { exit !(l != "" && l + 0 <= 2.0) }'
}
# the unit files and the running roles as shipped (no drop-in yet)
for unit in /lib/systemd/system/diplomd@.service \
    /lib/systemd/system/diplom-nats.service diplomd@gateway.service \
    diplomd@ingest.service diplomd@processor.service; do
	tap_ok "$(basename "$unit") exposure is 2.0 or less" exposure_ok "$unit"
done

# reload_keeps_pid : systemctl reload sends SIGHUP; the gateway stays the
# same process, logs the reload and still answers
reload_keeps_pid() {
	local pid since i
	pid=$(main_pid diplomd@gateway)
	since=$(sb 'date +%s')
	sb 'systemctl reload diplomd@gateway' || return 1
	[ "$(main_pid diplomd@gateway)" = "$pid" ] || return 1
	for i in $(seq 50); do
		sb "journalctl --no-pager -q -u diplomd@gateway --since @$since |
		    grep -q SIGHUP" && break
		sleep 0.1
	done
	sb "journalctl --no-pager -q -u diplomd@gateway --since @$since |
	    grep SIGHUP" | sed 's/^/#   /'
	[ "$i" -lt 50 ] && wait_health "$GW" &&
		sb 'systemctl is-active --quiet diplomd@gateway'
}
tap_ok "systemctl reload diplomd@gateway keeps its MainPID, logs SIGHUP" \
	reload_keeps_pid

# The internal token as a systemd credential, with the shipped example
# drop-in (and its IPAddressDeny/IPAddressAllow lines on): the roles start,
# talk to each other over the loopback, and no token is in the environment,
# on the command line or in the journal.
#
# Whether this sandbox hands credentials over at all: systemd 252 mounts
# them from a child's mount namespace, which needs mount propagation that a
# sandbox may lack (the directory is then empty). If it does not, the token
# goes to the roles by INTERNAL_TOKEN_FILE as well, so that the rest still
# runs with a token.
creds_work() {
	sb 'systemd-run -q -P --wait -p LoadCredential=probe:/etc/hostname \
	    sh -c "cat \"\$CREDENTIALS_DIRECTORY/probe\"" 2>/dev/null |
	    cmp -s - /etc/hostname'
}
creds=yes
creds_work || creds=no
tap_note "systemd credentials work in this sandbox: $creds"
token_drop_in() {
	local extra=
	[ "$creds" = yes ] ||
		extra='printf "Environment=INTERNAL_TOKEN_FILE=/etc/diplom/internal-token\n" \
		    >>/etc/systemd/system/diplomd@.service.d/security.conf &&'
	sb "cd /etc/diplom && (umask 027; head -c 32 /dev/urandom | base64 -w0 \
		>internal-token) && chgrp diplom internal-token &&
	    mkdir -p /etc/systemd/system/diplomd@.service.d &&
	    sed 's/^#IPAddress/IPAddress/' \
		/usr/share/doc/diplom/examples/diplomd-security.conf \
		>/etc/systemd/system/diplomd@.service.d/security.conf &&
	    $extra
	    systemctl daemon-reload && systemctl restart diplom.target &&
	    systemctl is-active --quiet diplomd@gateway diplomd@ingest \
		diplomd@processor"
}
tap_ok "a drop-in with LoadCredential=internal-token:/etc/diplom/...: roles start" \
	token_drop_in
token=$(cat "$sbx/etc/diplom/internal-token" 2>/dev/null) || token=
tap_ok "the token file is 0640 root:diplom" \
	sb '[ "$(stat -c "%a %U %G" /etc/diplom/internal-token)" = "640 root diplom" ]'
tap_ok "every role answers /health" roles_healthy
tap_ok "IPAddressDeny=any, IPAddressAllow=localhost are set on the roles" \
	sb 'systemctl show -p IPAddressDeny diplomd@processor |
	    grep -q "0.0.0.0/0" &&
	    systemctl show -p IPAddressAllow diplomd@gateway | grep -q 127.0.0.0/8'

# creds_delivered : each role has the credential internal-token
creds_delivered() {
	local role
	for role in gateway ingest processor; do
		sb "cmp -s /run/credentials/diplomd@$role.service/internal-token \
		    /etc/diplom/internal-token" ||
			{ tap_note "diplomd@$role has no credential internal-token"; return 1; }
	done
}
if [ "$creds" = yes ]; then
	tap_ok "each role has the credential internal-token" creds_delivered
else
	tap_skip "each role has the credential internal-token" \
		"this sandbox does not hand systemd credentials over"
fi

# token_hidden : the token is in neither a role's environment nor its
# command line
token_hidden() {
	local role pid
	[ -n "$token" ] || return 1
	for role in gateway ingest processor; do
		pid=$(main_pid "diplomd@$role")
		sb "grep -q CREDENTIALS_DIRECTORY= /proc/$pid/environ &&
		    ! grep -qF -- '$token' /proc/$pid/environ /proc/$pid/cmdline" ||
			{ tap_note "diplomd@$role shows its token"; return 1; }
	done
}
tap_ok "no token in any role's /proc/PID/environ or cmdline" token_hidden
ids=$work/token.ids
: >"$ids"
post_messages 20 "$ids"
tap_ok "with the token, 20 messages through the gateway are accepted" \
	test "$(wc -l <"$ids")" = 20
tap_ok "and processed" ids_have_results "$ids"

# Whether ingest and the processor require the token is the daemon's
# business: probe ingest with a direct, unauthenticated POST /ingest. 401
# is enforcement; 200 a build that does not enforce it yet (skipped); any
# other answer a failure.
probe=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
	-H 'Content-Type: application/json' \
	-d '{"source":"probe","data":"no token","metadata":{}}' \
	http://127.0.0.1:8081/ingest) || true
tap_note "ingest answers a POST /ingest without the token: $probe"
# with_token URL : the status of a GET of URL with the internal token
with_token() {
	curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
		-H "Authorization: Bearer $token" "$1"
}
enforced="ingest and the processor refuse a request without the token (401)"
if [ "$probe" = 200 ]; then
	tap_skip "$enforced" "internal token not enforced by this build"
	tap_skip "and take one with it; /health stays open" \
		"internal token not enforced by this build"
else
	tap_ok "$enforced" eval '[ "$probe" = 401 ] &&
	    [ "$(http_code http://127.0.0.1:8082/stats)" = 401 ] &&
	    [ "$(http_code http://127.0.0.1:8081/admin)" = 401 ]'
	tap_ok "and take one with it; /health stays open" eval '
	    [ "$(with_token http://127.0.0.1:8082/stats)" = 200 ] &&
	    [ "$(with_token http://127.0.0.1:8081/admin)" = 200 ] &&
	    [ "$(http_code http://127.0.0.1:8081/health)" = 200 ] &&
	    [ "$(http_code http://127.0.0.1:8082/health)" = 200 ]'
fi
tap_ok "no role logged the token" \
	sb "! journalctl --no-pager -q -u 'diplomd@*' | grep -qF -- '$token'"

# the running roles, with the security drop-in
for unit in diplomd@gateway.service diplomd@ingest.service \
    diplomd@processor.service; do
	tap_ok "$unit exposure with the drop-in is 2.0 or less" \
		exposure_ok "$unit"
done

tap_ok "without the drop-in and the token the roles start again" \
	sb 'rm -f /etc/systemd/system/diplomd@.service.d/security.conf \
		/etc/diplom/internal-token &&
	    rmdir /etc/systemd/system/diplomd@.service.d &&
	    systemctl daemon-reload && systemctl restart diplom.target &&
	    systemctl is-active --quiet diplomd@gateway diplomd@ingest \
		diplomd@processor'

# The shipped Prometheus example passes promtool's full check, with its
# authorization, scheme and tls_config lines on (the files it names made
# up here, as the full check opens them)
prom_example_ok() {
	local d=$work/prom
	mkdir -p "$d"
	cp "$top_srcdir/monitoring/diplom-rules.yml" "$d/"
	echo token >"$d/credentials"
	echo x >"$d/ca.pem"
	sed -E -e 's/^( *)#(authorization:|  credentials_file:|scheme:|tls_config:|  ca_file:)/\1\2/' \
		-e "s#/etc/prometheus/diplom-rules.yml#$d/diplom-rules.yml#" \
		-e "s#/etc/prometheus/diplom-(admin-key|internal-token)#$d/credentials#" \
		-e "s#/etc/prometheus/diplom-ca.pem#$d/ca.pem#" \
		"$top_srcdir/monitoring/prometheus.yml" >"$d/prometheus.yml"
	grep -q "credentials_file: $d/credentials" "$d/prometheus.yml" &&
		promtool check config "$top_srcdir/monitoring/prometheus.yml" \
		    --syntax-only >/dev/null 2>&1 &&
		promtool check config "$d/prometheus.yml" >"$d/out" 2>&1 ||
		{ sed 's/^/#   /' "$d/out" 2>/dev/null; return 1; }
}
if command -v promtool >/dev/null 2>&1; then
	tap_ok "promtool check config passes the example prometheus.yml, with a bearer token" \
		prom_example_ok
else
	tap_skip "promtool check config passes the example prometheus.yml, with a bearer token" \
		"promtool not installed"
fi

# --- purge ------------------------------------------------------------------

no_diplomd_running() {
	sb 'for c in /proc/[0-9]*/comm; do
	        [ "$(cat "$c" 2>/dev/null)" = diplomd ] && exit 1
	    done; exit 0'
}
tap_ok "apt-get purge diplom" sb 'apt-get purge -y -q diplom >/dev/null'
tap_ok "no diplom unit is active after the purge" \
	sb '! systemctl is-active --quiet diplomd@gateway diplomd@ingest \
	    diplomd@processor diplom-nats diplom.target'
tap_ok "no diplomd process is left" no_diplomd_running
tap_ok "the purge removed /var/lib/diplom, /etc/default/diplom, /etc/diplom" \
	sb '[ ! -e /var/lib/diplom ] && [ ! -e /etc/default/diplom ] &&
	    [ ! -e /etc/diplom ]'
