# tests/lib.sh - common helpers for the shell integration tests.
# Source it; it sets a cleanup trap that ends every process the test started.
# Tests print TAP: plan with tap_plan N, then ok/not ok lines via tap_ok.

set -u

: "${top_builddir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
DIPLOMD=${DIPLOMD:-$top_builddir/src/diplomd}
DIPLOM_LOADGEN=${DIPLOM_LOADGEN:-$top_builddir/src/loadgen/diplom-loadgen}

T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/diplom-test.XXXXXX")
T_PIDS=""
T_N=0
T_FAILED=0

t_cleanup() {
	local p
	for p in $T_PIDS; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in $T_PIDS; do
		for _ in $(seq 50); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	# a sanitizer build reports in the daemons' logs: that is a failure
	if grep -l -E 'AddressSanitizer|LeakSanitizer|runtime error:' \
		"$T_TMP"/*.log >/dev/null 2>&1; then
		echo "Bail out! sanitizer report in a daemon's log"
		T_FAILED=1
		grep -h -A 30 -E 'AddressSanitizer|LeakSanitizer|runtime error:' \
			"$T_TMP"/*.log | head -60 | sed 's/^/# /'
	fi
	if [ "$T_FAILED" -ne 0 ] || [ -n "${T_KEEP:-}" ]; then
		for f in "$T_TMP"/*.log; do
			[ -e "$f" ] || continue
			echo "# --- $f (last lines)"
			tail -n 20 "$f" | sed 's/^/# /'
		done
	fi
	rm -rf "$T_TMP"
}
trap t_cleanup EXIT
trap 'exit 1' INT TERM

tap_plan() { echo "1..$1"; }

# tap_ok DESCRIPTION CMD... : runs CMD, prints ok/not ok
tap_ok() {
	local desc=$1
	shift
	T_N=$((T_N + 1))
	if "$@"; then
		echo "ok $T_N - $desc"
	else
		echo "not ok $T_N - $desc"
		T_FAILED=1
	fi
}

# tap_skip_all REASON : whole test skipped (TAP)
tap_skip_all() {
	echo "1..0 # SKIP $1"
	exit 0
}

bail() {
	echo "Bail out! $*"
	T_FAILED=1
	exit 1
}

# free_port : prints a TCP port on 127.0.0.1 that nothing listens on
free_port() {
	local p
	while :; do
		p=$(( (RANDOM << 15 | RANDOM) % 40000 + 20000 ))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			if ! grep -q ":$(printf '%04X' "$p") " /proc/net/tcp 2>/dev/null; then
				echo "$p"
				return
			fi
		fi
	done
}

# track PID : end PID at exit
track() { T_PIDS="$T_PIDS $1"; }

# untrack PID
untrack() { T_PIDS=$(echo "$T_PIDS" | tr ' ' '\n' | grep -vx "$1" | tr '\n' ' '); }

# wait_http URL [SECONDS] [STATUS] : wait until URL answers STATUS (200)
wait_http() {
	local url=$1 secs=${2:-10} want=${3:-200} i code
	for i in $(seq $((secs * 20))); do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url")
		[ "$code" = "$want" ] && return 0
		sleep 0.05
	done
	echo "# $url did not answer $want within ${secs}s (last: $code)" >&2
	return 1
}

# start_role NAME ROLE [ARGS...] : start diplomd in the background, log to
# $T_TMP/NAME.log, pid into variable NAME_PID; environment passes through.
start_role() {
	local name=$1 role=$2
	shift 2
	"$DIPLOMD" --role="$role" "$@" >"$T_TMP/$name.log" 2>&1 &
	local pid=$!
	track "$pid"
	eval "${name}_PID=$pid"
}

# stop_pid PID [SIGNAL] : signal and wait for PID; its exit status in STOP_RC
# (not printed: a command substitution's subshell cannot wait for it)
stop_pid() {
	local pid=$1 sig=${2:-TERM}
	kill "-$sig" "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	STOP_RC=$?
	untrack "$pid"
}

# stack_ports : pick free ports and export the roles' environment for them.
# Sets GW_PORT ING_PORT PROC_PORT, GW ING PROC (base URLs) and RESULTS.
stack_ports() {
	GW_PORT=$(free_port); ING_PORT=$(free_port); PROC_PORT=$(free_port)
	GW=http://127.0.0.1:$GW_PORT
	ING=http://127.0.0.1:$ING_PORT
	PROC=http://127.0.0.1:$PROC_PORT
	RESULTS=${RESULTS:-$T_TMP/results.db}
	export LISTEN_ADDRESS=127.0.0.1 API_PORT=$GW_PORT INGEST_PORT=$ING_PORT \
		PROCESSOR_PORT=$PROC_PORT INGEST_URL=$ING PROCESSOR_URL=$PROC \
		RESULTS_DB=$RESULTS
}

# start_stack [EXTRA ARGS...] : gateway, ingest and processor on free ports
# (see stack_ports).
start_stack() {
	stack_ports
	start_role processor processor "$@"
	wait_http "$PROC/health" 10 || return 1
	start_role ingest ingest "$@"
	start_role gateway gateway "$@"
	wait_http "$ING/health" 10 && wait_http "$GW/health" 10
}

# stop_stack : end, and wait for, the roles start_stack started (gateway first)
stop_stack() {
	local r pid
	for r in gateway ingest processor; do
		pid=$(eval "echo \${${r}_PID:-}")
		[ -n "$pid" ] && stop_pid "$pid"
	done
}

# have_nats : nats-server is available; when DIPLOM_REQUIRE_NATS=1 its
# absence is a failure, never a skip.
need_nats() {
	if command -v nats-server >/dev/null 2>&1; then
		return 0
	fi
	if [ "${DIPLOM_REQUIRE_NATS:-0}" = 1 ]; then
		echo "Bail out! nats-server not found and DIPLOM_REQUIRE_NATS=1"
		exit 1
	fi
	tap_skip_all "nats-server not installed"
}

# start_nats : nats-server -js on a free loopback port with a store under
# $T_TMP/nats; sets NATS_PORT, NATS_URL (exported) and NATS_PID.
# Call again after stop to restart on the same port and store.
start_nats() {
	NATS_PORT=${NATS_PORT:-$(free_port)}
	export NATS_URL=nats://127.0.0.1:$NATS_PORT
	mkdir -p "$T_TMP/nats"
	nats-server -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$T_TMP/nats" \
		>>"$T_TMP/nats-server.log" 2>&1 &
	NATS_PID=$!
	track "$NATS_PID"
	local i
	for i in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$NATS_PORT") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "# nats-server did not start" >&2
	return 1
}

# post_ingest URL BODY : POST JSON, prints "STATUS BODY"
post_json() {
	curl -s --max-time 10 -o "$T_TMP/resp" -w '%{http_code}' \
		-H 'Content-Type: application/json' -d "$2" "$1"
	echo " $(cat "$T_TMP/resp" 2>/dev/null)"
}

# json_get JSON KEY : top-level (or dotted) key from JSON via jq
json_get() { printf '%s' "$1" | jq -r ".$2"; }

# sql DB QUERY
sql() { sqlite3 -batch -noheader "$1" "$2"; }

# wait_until SECONDS CMD... : poll CMD until it succeeds
wait_until() {
	local secs=$1 i
	shift
	for i in $(seq $((secs * 10))); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

tap_done() { [ "$T_FAILED" -eq 0 ]; }

# --- NATS helpers (tests/nats-*.sh) ---

# stack_env : pick ports and export the roles' environment like start_stack,
# with QUEUE_TYPE=nats, without starting anything (start_role each role).
stack_env() {
	stack_ports
	export QUEUE_TYPE=nats
}

# ingest_one DATA : POST one message through the gateway; prints "CODE ID"
# (ID is - when none came back).
ingest_one() {
	local out code id
	out=$(curl -s --max-time 10 -w '\n%{http_code}' \
		-H 'Content-Type: application/json' \
		-d "{\"source\":\"t\",\"data\":\"$1\",\"metadata\":{}}" \
		"$GW/api/v1/ingest")
	code=${out##*$'\n'}
	id=$(printf '%s' "${out%$'\n'*}" |
		sed -n 's/.*"message_id": *"\([^"]*\)".*/\1/p')
	echo "$code ${id:--}"
}

# send_n N PREFIX FILE : ingest_one N times, appending "CODE ID" lines to FILE
send_n() {
	local i
	for i in $(seq "$1"); do
		ingest_one "$2-$i" >>"$3"
	done
}

# processed_of FILE [DB] : how many of FILE's accepted ids have a result row
processed_of() {
	local list
	list=$(awk '$1 == 200 { printf "%s'\''%s'\''", (n++ ? "," : ""), $2 }' "$1")
	if [ -z "$list" ]; then
		echo 0
		return
	fi
	sql "${2:-$RESULTS}" \
		"SELECT count(*) FROM results WHERE message_id IN ($list)" \
		2>/dev/null || echo 0
}

# accepted_in FILE : how many 200s FILE records
accepted_in() { awk '$1 == 200' "$1" | wc -l; }

# all_processed FILE [DB] : every accepted id of FILE has a result row
all_processed() {
	[ "$(processed_of "$1" "${2:-$RESULTS}")" -eq "$(accepted_in "$1")" ]
}

# stat_of URL JQPATH : a number from a JSON stats document
stat_of() { curl -s --max-time 2 "$1" | jq -r "$2"; }

# http_code URL : the status GET URL answers
http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1"; }

# nats_pub_raw SUBJECT MSGID PAYLOAD : publish raw bytes with a Nats-Msg-Id
# header straight to the broker on $NATS_PORT (NATS text protocol over bash
# /dev/tcp); returns once the server answered the PING that follows.
nats_pub_raw() {
	local subj=$1 id=$2 payload=$3 hdr line
	local LC_ALL=C
	hdr=$'NATS/1.0\r\nNats-Msg-Id: '"$id"$'\r\n\r\n'
	exec 7<>"/dev/tcp/127.0.0.1/$NATS_PORT" || return 1
	read -r -t 5 line <&7		# INFO
	printf 'CONNECT {"verbose":false,"pedantic":false,"headers":true}\r\n' >&7
	printf 'HPUB %s %d %d\r\n%s%s\r\nPING\r\n' "$subj" "${#hdr}" \
		$((${#hdr} + ${#payload})) "$hdr" "$payload" >&7
	while read -r -t 5 line <&7; do
		case $line in
		PONG*) exec 7<&-; return 0 ;;
		-ERR*) echo "# nats: $line" >&2; exec 7<&-; return 1 ;;
		esac
	done
	exec 7<&-
	return 1
}
