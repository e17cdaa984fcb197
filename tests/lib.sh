# shellcheck shell=bash
# tests/lib.sh - the one shell harness of this tree, sourced (bash) by every
# tests/*.sh and scripts/*.sh. Both directories sit one level below the top,
# so `$(dirname "$0")/..` is the top of the tree for either; make passes
# top_srcdir and top_builddir for a VPATH build.
#
# Sourcing it makes a temporary directory $T_TMP and sets a cleanup trap:
# at exit it runs $T_AT_EXIT (when set) with the exit status, ends every
# process this shell tracked (track), by PID, and removes $T_TMP. Tests
# print TAP: tap_plan N, then ok/not ok lines via tap_ok.
#
# Roles run in one of two ways:
#   start_role / start_stack   children of this shell, pid in NAME_PID,
#                              log in $T_TMP/NAME.log, tracked
#   run_role_start / run_*     a run directory (pid files and the recorded
#                              settings) that outlives this shell, as
#                              scripts/run-local.sh and switch-queue.sh use

set -u

: "${top_builddir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
DIPLOMD=${DIPLOMD:-$top_builddir/src/diplomd}
DIPLOM_LOADGEN=${DIPLOM_LOADGEN:-$top_builddir/src/loadgen/diplom-loadgen}

T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/diplom-$(basename "$0" .sh).XXXXXX") ||
	exit 1
T_PIDS=""
T_N=0
T_FAILED=0
T_PLAN_AT_EXIT=""
# T_AT_EXIT: a command the cleanup runs first, with the exit status
T_AT_EXIT=""
# T_KEEP_DIR: non-empty keeps $T_TMP at exit
T_KEEP_DIR=""

# t_cleanup : the EXIT trap (see the top of this file)
t_cleanup() {
	local rc=$? p f
	set +e
	trap - EXIT
	if [ -n "$T_AT_EXIT" ]; then
		"$T_AT_EXIT" "$rc"
	fi
	for p in $T_PIDS; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in $T_PIDS; do
		pid_wait "$p" 5 || kill -KILL "$p" 2>/dev/null
		{ wait "$p"; } 2>/dev/null
	done
	# a sanitizer build reports in the daemons' logs: that is a failure
	if grep -l -E 'AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error:' \
		"$T_TMP"/*.log >/dev/null 2>&1; then
		echo "Bail out! sanitizer report in a daemon's log"
		T_FAILED=1
		grep -h -A 30 -E 'AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error:' \
			"$T_TMP"/*.log | head -60 | sed 's/^/# /'
	fi
	if [ "$T_FAILED" -ne 0 ] || [ -n "${T_KEEP:-}" ]; then
		for f in "$T_TMP"/*.log; do
			[ -e "$f" ] || continue
			echo "# --- $f (last lines)"
			tail -n 20 "$f" | sed 's/^/# /'
		done
	fi
	if [ -n "$T_PLAN_AT_EXIT" ]; then
		tap_plan "$T_N"
	fi
	if [ -n "$T_KEEP_DIR" ]; then
		say "$(basename "$0" .sh): work directory kept: $T_TMP"
	else
		rm -rf "$T_TMP"
	fi
	[ "$T_FAILED" -eq 0 ] || exit 1
}
trap t_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- TAP ---------------------------------------------------------------------

# tap_plan [N] : the plan; without N it is printed at exit, from the count
tap_plan() {
	if [ $# -eq 0 ]; then
		T_PLAN_AT_EXIT=1
	else
		echo "1..$1"
	fi
}

# tap_pass DESCRIPTION : an ok line
tap_pass() {
	T_N=$((T_N + 1))
	echo "ok $T_N - $1"
}

# tap_skip DESCRIPTION REASON : a test that does not apply here
tap_skip() {
	T_N=$((T_N + 1))
	echo "ok $T_N - $1 # SKIP $2"
}

# tap_fail DESCRIPTION : a not ok line; the run fails
tap_fail() {
	T_N=$((T_N + 1))
	T_FAILED=1
	echo "not ok $T_N - $1"
}

# tap_ok DESCRIPTION CMD... : runs CMD, prints ok/not ok
tap_ok() {
	local desc=$1
	shift
	if "$@"; then
		tap_pass "$desc"
	else
		tap_fail "$desc"
	fi
}

# tap_note TEXT... : a TAP comment
tap_note() { echo "# $*"; }

# tap_skip_all REASON : whole test skipped (TAP)
tap_skip_all() {
	echo "1..0 # SKIP $1"
	exit 0
}

# bail REASON : later checks make no sense; the trap still cleans up
bail() {
	echo "Bail out! $*"
	T_FAILED=1
	exit 1
}

tap_done() { [ "$T_FAILED" -eq 0 ]; }

# need_tools TOOL... : skip the whole test when one is not installed
need_tools() {
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null 2>&1 ||
			tap_skip_all "$tool not installed"
	done
}

# required_tools TOOL... : true when every TOOL is installed; when one is
# not, false, or with DIPLOM_REQUIRE_NATS=1 (CI, where scripts/install-deps.sh
# installed them all) a bail-out, as for nats-server
required_tools() {
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null 2>&1 && continue
		[ "${DIPLOM_REQUIRE_NATS:-0}" = 1 ] &&
			bail "$tool not found and DIPLOM_REQUIRE_NATS=1"
		return 1
	done
}

# need_required_tools TOOL... : skip the whole test unless every TOOL is
# installed; a failure instead with DIPLOM_REQUIRE_NATS=1 (required_tools)
need_required_tools() {
	required_tools "$@" || tap_skip_all "one of $* not installed"
}

# need_loadgen : diplom-loadgen is built, else the test cannot run
need_loadgen() {
	[ -x "$DIPLOM_LOADGEN" ] || bail "$DIPLOM_LOADGEN not built"
}

# say TEXT... : progress on stderr, so stdout stays for results; a caller
# may name its own printing function in SAY_WITH
say() {
	if [ -n "${SAY_WITH:-}" ]; then
		"$SAY_WITH" "$*"
	else
		echo "$*" >&2
	fi
}

# script_help LAST : lines 2 to LAST of the running script's header comment
script_help() { sed -n "2,${1}s/^# \{0,1\}//p" "$0"; }

# --- processes ---------------------------------------------------------------

# track PID : end PID at exit
track() { T_PIDS="$T_PIDS $1"; }

# untrack PID
untrack() { T_PIDS=$(echo "$T_PIDS" | tr ' ' '\n' | grep -vx "$1" | tr '\n' ' '); }

# pid_running PID : PID exists and is not a zombie (an orphan's zombie
# may linger until its new parent reaps it, yet it has ended)
pid_running() {
	kill -0 "$1" 2>/dev/null &&
		[ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" != Z ]
}

# pid_wait PID SECONDS : wait for PID to end; a child of this shell is
# reaped with wait (so it is no zombie), anyone else's is polled; returns 1
# when it still runs after SECONDS
pid_wait() {
	local pid=$1 secs=$2
	for _ in $(seq $((secs * 10))); do
		pid_running "$pid" || break
		sleep 0.1
	done
	pid_running "$pid" && return 1
	# a child of ours that ended: reap it (no job notice)
	if [ "$(ps -o ppid= -p "$pid" 2>/dev/null | tr -d ' ')" = "$BASHPID" ]; then
		{ wait "$pid"; } 2>/dev/null
	fi
	return 0
}

# stop_pid PID [SIGNAL] : signal and wait for PID; its exit status in STOP_RC
# (not printed: a command substitution's subshell cannot wait for it)
stop_pid() {
	local pid=$1 sig=${2:-TERM}
	kill "-$sig" "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	# shellcheck disable=SC2034 # for the caller
	STOP_RC=$?
	untrack "$pid"
}

# --- ports and HTTP ------------------------------------------------------------

# free_port : prints a TCP port on 127.0.0.1 that nothing listens on
# (20000-59999, away from the stack's fixed defaults that others use)
free_port() {
	local p
	while :; do
		p=$(( (RANDOM << 15 | RANDOM) % 22000 + 10000 ))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			if ! grep -q ":$(printf '%04X' "$p") " /proc/net/tcp 2>/dev/null; then
				echo "$p"
				return
			fi
		fi
	done
}

# http_code URL [MAX_SECONDS] : the status GET URL answers (000: no answer)
http_code() {
	curl -s -o /dev/null -w '%{http_code}' --max-time "${2:-5}" "$1"
}

# wait_http URL [SECONDS] [STATUS] : wait until URL answers STATUS (200)
wait_http() {
	local url=$1 secs=${2:-10} want=${3:-200} code=''
	for _ in $(seq $((secs * 20))); do
		code=$(http_code "$url" 1)
		[ "$code" = "$want" ] && return 0
		sleep 0.05
	done
	echo "# $url did not answer $want within ${secs}s (last: $code)" >&2
	return 1
}

# wait_health BASE_URL [SECONDS] : wait until BASE_URL/health answers 200
wait_health() { wait_http "$1/health" "${2:-10}"; }

# wait_until SECONDS CMD... : poll CMD until it succeeds
wait_until() {
	local secs=$1
	shift
	for _ in $(seq $((secs * 10))); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

# post_json URL BODY : POST JSON, prints "STATUS BODY"
post_json() {
	curl -s --max-time 10 -o "$T_TMP/resp" -w '%{http_code}' \
		-H 'Content-Type: application/json' -d "$2" "$1"
	echo " $(cat "$T_TMP/resp" 2>/dev/null)"
}

# json_get JSON KEY : top-level (or dotted) key from JSON via jq
json_get() { printf '%s' "$1" | jq -r ".$2"; }

# stat_of URL JQPATH : a number from a JSON stats document, empty when
# nothing answers
stat_of() { curl -s --max-time 3 "$1" 2>/dev/null | jq -r "$2" 2>/dev/null; }

# proc_backlog PROC_URL : the processor's backlog (.queue.CurrentSize)
proc_backlog() { stat_of "$1/stats" '.queue.CurrentSize // empty'; }

# proc_processed PROC_URL : the processor's .pool.ProcessedCount
proc_processed() { stat_of "$1/stats" '.pool.ProcessedCount // empty'; }

# backlog_empty [PROC_URL] : the processor ($PROC) has nothing queued
backlog_empty() { [ "$(proc_backlog "${1:-$PROC}")" = 0 ]; }

# wait_drained PROC_URL SECONDS : wait until the backlog is 0 and the
# processed count has not moved for a second (the nats figure is a cache a
# few hundred ms old, so one zero is not enough); 1 on timeout
wait_drained() {
	local url=$1 secs=$2 size count last='' calm=0
	for _ in $(seq $((secs * 5))); do
		size=$(proc_backlog "$url")
		count=$(proc_processed "$url")
		if [ "$size" = 0 ] && [ -n "$count" ] && [ "$count" = "$last" ]; then
			calm=$((calm + 1))
			[ "$calm" -ge 5 ] && return 0
		else
			calm=0
		fi
		last=$count
		sleep 0.2
	done
	return 1
}

# sql DB QUERY
sql() { sqlite3 -batch -noheader "$1" "$2"; }

# sent_count DB [LABEL] : rows diplom-loadgen --record has committed to DB
# so far (of LABEL), 0 while there is none
sent_count() {
	local where=''
	[ -n "${2:-}" ] && where=" WHERE label = '$2'"
	sqlite3 -batch -noheader -cmd '.timeout 2000' "$1" \
		"SELECT count(*) FROM sent$where" 2>/dev/null || echo 0
}

# --- roles, children of this shell ---------------------------------------------

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

# stack_roles [EXTRA ARGS...] : the processor and, once it answers, ingest
# and the gateway, on the ports stack_ports picked
stack_roles() {
	start_role processor processor "$@"
	wait_health "$PROC" 10 || return 1
	start_role ingest ingest "$@"
	start_role gateway gateway "$@"
	wait_health "$ING" 10 && wait_health "$GW" 10
}

# start_stack [EXTRA ARGS...] : gateway, ingest and processor on free ports
# (see stack_ports).
# shellcheck disable=SC2120
start_stack() {
	stack_ports
	stack_roles "$@"
}

# stop_stack : end, and wait for, the roles start_stack started (gateway first)
stop_stack() {
	local r pid
	for r in gateway ingest processor; do
		pid=$(eval "echo \${${r}_PID:-}")
		[ -n "$pid" ] && stop_pid "$pid"
	done
}

# stack_env : pick ports and export the roles' environment like start_stack,
# with QUEUE_TYPE=nats, without starting anything (stack_roles, or
# start_role each role).
stack_env() {
	stack_ports
	export QUEUE_TYPE=nats
}

# --- NATS --------------------------------------------------------------------

# need_nats : nats-server is available; when DIPLOM_REQUIRE_NATS=1 its
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

# start_nats [DIR] : nats-server -js on a free loopback port with a store
# under DIR/nats (DIR: $T_TMP), log DIR/nats-server.log; sets NATS_PORT,
# NATS_URL (exported) and NATS_PID. Call again after stop to restart on the
# same port and store; empty NATS_PORT first for a new port.
# shellcheck disable=SC2120
start_nats() {
	local dir=${1:-$T_TMP}
	NATS_PORT=${NATS_PORT:-$(free_port)}
	export NATS_URL=nats://127.0.0.1:$NATS_PORT
	mkdir -p "$dir/nats"
	# the package's broker settings (max_payload), as the package runs it
	nats-server -c "$top_srcdir/systemd/diplom-nats.conf" -js \
		-a 127.0.0.1 -p "$NATS_PORT" -sd "$dir/nats" \
		>>"$dir/nats-server.log" 2>&1 &
	NATS_PID=$!
	track "$NATS_PID"
	wait_nats_port && return 0
	echo "# nats-server did not start on port $NATS_PORT" \
		"(log: $dir/nats-server.log)" >&2
	return 1
}

# wait_nats_port : up to 5 s until the nats-server NATS_PID takes
# connections on NATS_PORT; fails at once when it exits
wait_nats_port() {
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$NATS_PORT") 2>/dev/null && return 0
		kill -0 "$NATS_PID" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# stop_nats [SIGNAL] : end the nats-server start_nats started, and reap it
stop_nats() {
	[ -n "${NATS_PID:-}" ] || return 0
	stop_pid "$NATS_PID" "${1:-TERM}"
	NATS_PID=""
}

# nats_reachable NATS_URL : something listens at the first server of
# the (comma-separated) list, so a switch to nats can succeed
nats_reachable() {
	local hp=${1%%,*}
	hp=${hp#*://}
	hp=${hp##*@}
	hp=${hp%%/*}
	case $hp in *:*) ;; *) hp=$hp:4222 ;; esac
	timeout 2 bash -c "exec 3<>/dev/tcp/${hp%:*}/${hp##*:}" 2>/dev/null
}

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

# --- messages through a stack ------------------------------------------------

# ingest_one DATA : POST one message through the gateway ($GW); prints
# "CODE ID" (ID is - when none came back, CODE 000 when nothing answered).
ingest_one() {
	local out code id
	out=$(curl -s --max-time 10 -w '\n%{http_code}' \
		-H 'Content-Type: application/json' \
		-d "{\"source\":\"t\",\"data\":\"$1\",\"metadata\":{}}" \
		"$GW/api/v1/ingest") || true
	code=${out##*$'\n'}
	id=$(printf '%s' "${out%$'\n'*}" |
		sed -n 's/.*"message_id": *"\([^"]*\)".*/\1/p')
	echo "${code:-000} ${id:--}"
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

# --- run directories: roles that outlive this shell ---------------------------
#
# A run directory holds, per role (gateway, ingest, processor):
#   ROLE.pid   the diplomd process of that role
#   ROLE.log   its log, for roles started through run_role_start
# and one file `env`: `export NAME=value` lines for diplomd's variables and
# DIPLOMD, so a role can be restarted exactly as it was, with another
# QUEUE_TYPE.

# diplomd's variables (SPEC §3) that a restarted role must get back.
RUN_VARS="LISTEN_ADDRESS API_PORT INGEST_PORT PROCESSOR_PORT INGEST_URL
PROCESSOR_URL QUEUE_TYPE QUEUE_SIZE PROCESSOR_WORKERS PROCESSING_DELAY_MS
RESULTS_DB NATS_URL NATS_STREAM NATS_SUBJECT_PREFIX NATS_MAX_MSGS
NATS_MAX_BYTES NATS_MAX_AGE NATS_REPLICAS NATS_ACK_WAIT NATS_MAX_DELIVER
NATS_FETCH_BATCH MAX_BODY_BYTES DRAIN_TIMEOUT LOG_LEVEL MAX_CLIENT_CONNECTIONS
REQUEST_TIMEOUT IDLE_TIMEOUT BODY_MEMORY MAX_METADATA_KEYS NATS_DUPLICATE_WINDOW
MAX_METADATA_KEY_BYTES MAX_METADATA_VALUE_BYTES RESULTS_RETENTION
RESULTS_MAX_BYTES LOG_FORMAT DIPLOMD"

# run_env_save DIR : record the current environment's diplomd settings so
# the roles can be restarted later with the same configuration
run_env_save() {
	local dir=$1 v
	{
		for v in $RUN_VARS; do
			if [ -n "${!v+set}" ]; then
				printf 'export %s=%q\n' "$v" "${!v}"
			fi
		done
	} >"$dir/env.new" && mv -f "$dir/env.new" "$dir/env"
}

# run_env_set DIR NAME VALUE : change one recorded setting (e.g. QUEUE_TYPE)
# so later restarts and the next switch see it
run_env_set() {
	local dir=$1 name=$2 value=$3
	{
		grep -v "^export $name=" "$dir/env" 2>/dev/null || :
		printf 'export %s=%q\n' "$name" "$value"
	} >"$dir/env.new" && mv -f "$dir/env.new" "$dir/env"
}

# run_env_get DIR NAME [DEFAULT] : a recorded setting, in a subshell so the
# caller's environment is untouched
run_env_get() {
	local dir=$1 name=$2 def=${3-}
	(
		unset "$name"
		# shellcheck disable=SC1091
		. "$dir/env" 2>/dev/null
		printf '%s\n' "${!name:-$def}"
	)
}

# run_url DIR ROLE : the base URL a role of that run directory answers on
run_url() {
	local dir=$1 role=$2 addr port
	addr=$(run_env_get "$dir" LISTEN_ADDRESS 127.0.0.1)
	case $addr in 0.0.0.0 | '' | '*') addr=127.0.0.1 ;; ::) addr='[::1]' ;; esac
	case $role in
	gateway) port=$(run_env_get "$dir" API_PORT 8080) ;;
	ingest) port=$(run_env_get "$dir" INGEST_PORT 8081) ;;
	processor) port=$(run_env_get "$dir" PROCESSOR_PORT 8082) ;;
	esac
	echo "http://$addr:$port"
}

# run_pid DIR ROLE : the recorded pid of a role, empty when none
run_pid() { cat "$1/$2.pid" 2>/dev/null; }

# run_role_start DIR ROLE [QUEUE_TYPE] : start one role in the background
# with the recorded settings (QUEUE_TYPE overriding), log appended to
# DIR/ROLE.log, pid to DIR/ROLE.pid; $! is diplomd itself (exec). Disowned,
# so bash prints no "Killed" notice when a scenario SIGKILLs it; not
# tracked, since it is meant to outlive a script such as switch-queue.sh.
run_role_start() {
	local dir=$1 role=$2 qt=${3-}
	(
		# shellcheck disable=SC1091
		. "$dir/env"
		exec env ${qt:+"QUEUE_TYPE=$qt"} "${DIPLOMD:-diplomd}" \
			--role="$role"
	) >>"$dir/$role.log" 2>&1 &
	echo $! >"$dir/$role.pid"
	disown $!
}

# run_role_stop DIR ROLE [SIGNAL] [SECONDS] : signal a role and wait for it
# to end (SIGTERM lets it drain, so the bound is generous); 1 if it did not
run_role_stop() {
	local dir=$1 role=$2 sig=${3:-TERM} secs=${4:-60} pid
	pid=$(run_pid "$dir" "$role")
	[ -n "$pid" ] || return 0
	kill "-$sig" "$pid" 2>/dev/null
	if ! pid_wait "$pid" "$secs"; then
		say "$role (pid $pid) did not stop within ${secs}s"
		return 1
	fi
	rm -f "$dir/$role.pid"
}

# run_stack_stop DIR : stop the roles of DIR, gateway and ingest first so
# nothing new enters while the processor drains; SIGKILL for a role that
# does not end within 60 s of its SIGTERM
run_stack_stop() {
	local role
	for role in gateway ingest processor; do
		run_role_stop "$1" "$role" TERM 60 ||
			run_role_stop "$1" "$role" KILL 5
	done
}

# run_print_health DIR : one line per role: role, status, /health body
run_print_health() {
	local dir=$1 role url body code
	for role in gateway ingest processor; do
		url=$(run_url "$dir" "$role")
		body=$(curl -s --max-time 2 -w '\n%{http_code}' "$url/health")
		code=${body##*$'\n'}
		body=${body%$'\n'*}
		printf '%-10s %s %s\n' "$role" "$code" "${body:-(no answer)}"
	done
}

# run_switch DIR QUEUE_TYPE : switch the stack of DIR to another backend
# without losing a message: stop ingest (clients get 503 from the gateway
# and retry), wait for the processor's backlog to reach 0, restart the
# processor and then ingest with the new QUEUE_TYPE; the gateway stays.
# SWITCH_DRAIN_SECONDS (120) bounds the wait for the backlog.
run_switch() {
	local dir=$1 qt=$2 proc ing old nats_url
	proc=$(run_url "$dir" processor)
	ing=$(run_url "$dir" ingest)
	old=$(run_env_get "$dir" QUEUE_TYPE memory)
	case $qt in
	memory) ;;
	nats)
		nats_url=$(run_env_get "$dir" NATS_URL nats://localhost:4222)
		if ! nats_reachable "$nats_url"; then
			say "switch: no NATS server at $nats_url;" \
				"start one (nats-server -js) and set NATS_URL"
			return 1
		fi
		;;
	*) say "switch: unknown queue type '$qt' (memory or nats)"; return 2 ;;
	esac
	say "switch: $old -> $qt"
	say "switch: stopping ingest"
	run_role_stop "$dir" ingest TERM 60 || return 1
	say "switch: waiting for the processor's backlog to reach 0"
	if ! wait_drained "$proc" "${SWITCH_DRAIN_SECONDS:-120}"; then
		say "switch: backlog still $(proc_backlog "$proc") after" \
			"${SWITCH_DRAIN_SECONDS:-120}s; restarting ingest on $old," \
			"nothing switched"
		run_role_start "$dir" ingest
		return 1
	fi
	say "switch: restarting the processor with QUEUE_TYPE=$qt"
	run_role_stop "$dir" processor TERM 60 || return 1
	run_env_set "$dir" QUEUE_TYPE "$qt"
	run_role_start "$dir" processor
	if ! wait_health "$proc" 15; then
		say "switch: the processor is not healthy on $qt" \
			"(log: $dir/processor.log)"
		return 1
	fi
	say "switch: restarting ingest with QUEUE_TYPE=$qt"
	run_role_start "$dir" ingest
	if ! wait_health "$ing" 15; then
		say "switch: ingest is not healthy on $qt (log: $dir/ingest.log)"
		return 1
	fi
	return 0
}

# --- attacks and the client that must not notice them ------------------------

# rss_kb PID : the resident set of PID, in KiB
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# normal_client_start URL SECONDS : a well-behaved client in the background
# (diplom-loadgen, 50 messages/s on 4 connections, JSON summary in
# $T_TMP/normal.json) while an attack runs
normal_client_start() {
	"$DIPLOM_LOADGEN" --url "$1" --rate 50 --duration "$2" -c 4 --json \
		>"$T_TMP/normal.json" 2>"$T_TMP/normal.err" &
	NORMAL_PID=$!
	track "$NORMAL_PID"
}

# one_attack_at_a_time : wait until no other test of this build runs an
# attack, and hold that until this script ends: another attack in parallel
# (make -j) would be measured as this one's by its normal client
one_attack_at_a_time() {
	exec 9>>"$top_builddir/tests/attack.lock" && flock 9
}

# normal_client_ok : wait for the client; true when at least 99% of its
# messages were accepted with a p99 under a second (ABUSE_P99_MS): it was
# served, not starved, whose requests wait for many seconds. The target,
# p99 under 100 ms, is a figure to read in the note, not a bound on a test
# that shares two cores with the rest of the suite.
normal_client_ok() {
	wait "$NORMAL_PID" 2>/dev/null
	untrack "$NORMAL_PID"
	tap_note "normal client: $(jq -c '{sent, accepted, errors,
		p99_ms: .latency_ms.p99}' "$T_TMP/normal.json" 2>/dev/null)"
	jq -e '.sent > 0 and .accepted >= 0.99 * .sent and
		.latency_ms.p99 < ($p99)' --argjson p99 "${ABUSE_P99_MS:-1000}" "$T_TMP/normal.json" >/dev/null 2>&1
}

# sanitized_build : diplomd is built with a sanitizer, whose allocator
# keeps freed memory (ASan's quarantine), so that RSS says nothing about
# what the daemon gave back
sanitized_build() { ldd "$DIPLOMD" 2>/dev/null | grep -q -E 'lib(asan|tsan)'; }

# rss_back_ok DESCRIPTION AFTER BEFORE : the resident set went back to
# within 32 MiB of what it was, or a skip in a sanitizer build
rss_back_ok() {
	if sanitized_build; then
		tap_skip "$1" "a sanitizer's allocator keeps freed memory"
	else
		tap_ok "$1" test "$2" -lt $(($3 + 32 * 1024))
	fi
}

# rss_note PID WHEN : note the resident set of PID at a moment of the test,
# and keep it in RSS_<WHEN>
rss_note() {
	local kb
	kb=$(rss_kb "$1")
	eval "RSS_$2=${kb:-0}"
	tap_note "RSS $2: $(( ${kb:-0} / 1024 )) MiB"
}

# not_grep PATTERN FILE : true when FILE has no line matching PATTERN
not_grep() { ! grep -q -- "$1" "$2"; }

# --- retries and their duplicates ---------------------------------------------

# load LABEL SECONDS [LOADGEN ARGS...] : a steady client in the background
# that retries, recording what was accepted under LABEL
load() {
	local label=$1 secs=$2
	shift 2
	"$DIPLOM_LOADGEN" --url "$GW/api/v1/ingest" --rate 300 \
		--duration "$secs" -c 16 --retry 50 --record "$T_TMP/sent.db" \
		--label "$label" --json "$@" >"$T_TMP/$label.json" \
		2>"$T_TMP/$label.err" &
	LOAD_PID=$!
	track "$LOAD_PID"
}
load_wait() { wait "$LOAD_PID"; untrack "$LOAD_PID"; }

# count SQL : a number from the results joined with the accepted ids
count() {
	sqlite3 -batch -noheader -cmd '.timeout 2000' "$RESULTS" \
		"ATTACH '$T_TMP/sent.db' AS s; $1"
}
# strangers : rows of messages the client never got an id for
strangers() {
	count "SELECT count(*) FROM results WHERE message_id NOT IN
		(SELECT message_id FROM s.sent)"
}
# missing LABEL : accepted ids of LABEL without a row
missing() {
	count "SELECT count(*) FROM s.sent WHERE label = '$1' AND message_id
		NOT IN (SELECT message_id FROM results)"
}
# drained LABEL : the backlog is empty and LABEL's accepted ids have rows
drained() { backlog_empty "$PROC" && [ "$(missing "$1")" = 0 ]; }

# kill_ingest / restart_processor : faults a retrying load goes through
kill_ingest() {
	stop_pid "$ingest_PID" KILL
	start_role ingest ingest
	wait_health "$ING" 10 || bail "ingest did not come back"
}
restart_processor() {
	stop_pid "$processor_PID"
	start_role processor processor
	wait_health "$PROC" 10 || bail "the processor did not come back"
}

# load_through LABEL WHAT FAULT [BASE] : 6 s of retrying load under LABEL
# with FAULT 2 s in; then every accepted message has its row, and no row is
# a stranger beyond the BASE rows there were before
load_through() {
	local label=$1 what=$2 fault=$3 base=${4:-0}
	load "$label" 6
	sleep 2
	"$fault"
	load_wait
	wait_until 30 drained "$label"
	tap_note "$what: $(jq -c '{sent, accepted, retries, errors}' \
		"$T_TMP/$label.json"), strangers $(( $(strangers) - base ))"
	tap_ok "with $what, every accepted message has its row" \
		test "$(missing "$label")" = 0
	tap_ok "and none is a duplicate" test "$(strangers)" = "$base"
}

# --- several processors, each with its own result store ----------------------

# stores_sql SQL DB... : SQL over the recorded ids ($T_TMP/sent.db, table
# sent) with the result stores DB... attached; the view every_row
# (message_id, store) holds the rows of them all, store being the
# position of its DB in the list (1, 2, ...)
stores_sql() {
	local q=$1 i=0 db attach='' view=''
	shift
	for db in "$@"; do
		i=$((i + 1))
		attach="$attach ATTACH '$db' AS r$i;"
		view="$view${view:+ UNION ALL }SELECT message_id, $i AS store FROM r$i.results"
	done
	sqlite3 -batch -noheader -cmd '.timeout 2000' "$T_TMP/sent.db" \
		"$attach CREATE TEMP VIEW every_row AS $view; $q"
}

# not_once DB... : recorded ids that have not exactly one row across the
# stores DB... (none yet, or one in two stores)
not_once() {
	stores_sql "SELECT count(*) FROM sent s WHERE (SELECT count(*)
		FROM every_row r WHERE r.message_id = s.message_id) <> 1" "$@"
}

# in_two_stores DB... : ids with rows in more than one of the stores DB...
in_two_stores() {
	stores_sql "SELECT count(*) FROM (SELECT message_id FROM every_row
		GROUP BY message_id HAVING count(DISTINCT store) > 1)" "$@"
}

# all_once DB... : every recorded id has exactly one row across DB...
all_once() { [ "$(not_once "$@")" = 0 ]; }

# loadgen_json FILE FILTER : a figure from a diplom-loadgen --json summary
loadgen_json() { jq -r "$2" "$1" 2>/dev/null; }

# --- diplomctl ----------------------------------------------------------------

# need_ctl : diplomctl is built, in $CTL ($DIPLOMCTL overrides)
need_ctl() {
	CTL=${DIPLOMCTL:-$top_builddir/src/ctl/diplomctl}
	[ -x "$CTL" ] || bail "$CTL not built"
}

# ctl ARGS... : diplomctl; stdout in $T_TMP/out, stderr in $T_TMP/err,
# the exit status in CTL_RC (and returned)
ctl() {
	"$CTL" "$@" >"$T_TMP/out" 2>"$T_TMP/err"
	CTL_RC=$?
	return $CTL_RC
}

# exits N ARGS... : diplomctl ARGS exits N; if not, notes what it said
exits() {
	local want=$1
	shift
	ctl "$@"
	[ "$CTL_RC" -eq "$want" ] && return 0
	tap_note "diplomctl $* exited $CTL_RC, not $want"
	sed 's/^/#   /' "$T_TMP/out" "$T_TMP/err" | head -20
	return 1
}

# quietly N ARGS... : as exits, without the notes, for polling
quietly() {
	local want=$1
	shift
	ctl "$@"
	[ "$CTL_RC" -eq "$want" ]
}

out_has() { grep -q -- "$1" "$T_TMP/out"; }
err_has() { grep -q -- "$1" "$T_TMP/err"; }
# jout FILTER : jq -e FILTER over diplomctl's last output
jout() { jq -e "$1" "$T_TMP/out" >/dev/null; }

# --- Debian packages ----------------------------------------------------------

# deb_build SRC DIR : build the binary package of the tree SRC in DIR/diplom
# (a copy without the products of an in-tree build, so that debhelper
# configures from scratch; dpkg-buildpackage writes the .deb to DIR).
# DEB_BUILD_OPTIONS defaults to nocheck: make check runs on its own.
deb_build() {
	local src=$1 dir=$2
	mkdir -p "$dir/diplom"
	tar -C "$src" -cf - \
		--exclude=.git --exclude=autom4te.cache --exclude=.deps \
		--exclude='*.o' --exclude='*.a' --exclude=.dirstamp \
		--exclude=./Makefile --exclude=./config.status \
		--exclude=./config.log --exclude=./config.h --exclude=./stamp-h1 \
		--exclude=./src/diplomd --exclude=./src/loadgen/diplom-loadgen \
		--exclude=./src/ctl/diplomctl \
		--exclude='./tests/*.log' --exclude='./tests/*.trs' \
		--exclude='./_*' \
		--exclude=./debian/diplom --exclude=./debian/.debhelper \
		--exclude=./debian/files --exclude='./debian/*.substvars' \
		--exclude='./debian/*.log' \
		--exclude=./debian/debhelper-build-stamp \
		. | tar -C "$dir/diplom" -xf - &&
		(cd "$dir/diplom" &&
		DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS-nocheck parallel=2} \
		dpkg-buildpackage -us -uc -b)
}

# nats_answer CONNECT : the answer of the broker on 127.0.0.1:4222 (the
# packaged one) to a raw client that sends CONNECT (its JSON), then a
# publish of a forged message into the stream's subject and PING:
# -ERR 'Authorization Violation' or PONG.  CONNECT goes
# alone first, as a client's does: a refused one is answered and closed at
# once, and bytes the broker never read would turn its close into a reset
# that can take the answer with it.
nats_answer() {
	local line=
	exec 3<>/dev/tcp/127.0.0.1/4222 || return 1
	read -r -t 5 line <&3 || true	# INFO
	printf 'CONNECT %s\r\n' "$1" >&3
	line=
	read -r -t 2 line <&3 || true
	if [ -z "$line" ]; then
		printf 'PUB diplom.messages 5\r\nforge\r\nPING\r\n' >&3 \
			2>/dev/null || true
		read -r -t 5 line <&3 || true
	fi
	exec 3>&- 3<&-
	printf '%s\n' "${line%$'\r'}"
}
