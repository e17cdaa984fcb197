# shellcheck shell=bash
# scripts/switch-lib.sh - run-directory helpers and the backend switch, shared
# by scripts/run-local.sh, scripts/switch-queue.sh and
# scripts/verify-persistence.sh. Source it (bash); it sets no traps and
# changes no shell options.
#
# A run directory holds, per role (gateway, ingest, processor):
#   ROLE.pid   the diplomd process of that role
#   ROLE.log   its log, for roles started through sw_role_start
# and one file `env`: `export NAME=value` lines for diplomd's variables and
# DIPLOMD, so a role can be restarted exactly as it was, with another
# QUEUE_TYPE.

# diplomd's variables (SPEC §3) that a restarted role must get back.
SW_VARS="LISTEN_ADDRESS API_PORT INGEST_PORT PROCESSOR_PORT INGEST_URL
PROCESSOR_URL QUEUE_TYPE QUEUE_SIZE PROCESSOR_WORKERS PROCESSING_DELAY_MS
RESULTS_DB NATS_URL NATS_STREAM NATS_SUBJECT_PREFIX NATS_MAX_MSGS
NATS_MAX_BYTES NATS_MAX_AGE NATS_REPLICAS NATS_ACK_WAIT NATS_MAX_DELIVER
NATS_FETCH_BATCH MAX_BODY_BYTES DRAIN_TIMEOUT LOG_LEVEL DIPLOMD"

# sw_say TEXT... : progress goes to stderr so stdout stays for results; a
# caller may name its own printing function in SW_SAY
sw_say() {
	if [ -n "${SW_SAY:-}" ]; then
		"$SW_SAY" "$*"
	else
		echo "$*" >&2
	fi
}

# sw_env_save DIR : record the current environment's diplomd settings so
# the roles can be restarted later with the same configuration
sw_env_save() {
	local dir=$1 v
	{
		for v in $SW_VARS; do
			if [ -n "${!v+set}" ]; then
				printf 'export %s=%q\n' "$v" "${!v}"
			fi
		done
	} >"$dir/env.new" && mv -f "$dir/env.new" "$dir/env"
}

# sw_env_set DIR NAME VALUE : change one recorded setting (e.g. QUEUE_TYPE)
# so later restarts and the next switch see it
sw_env_set() {
	local dir=$1 name=$2 value=$3
	{
		grep -v "^export $name=" "$dir/env" 2>/dev/null || :
		printf 'export %s=%q\n' "$name" "$value"
	} >"$dir/env.new" && mv -f "$dir/env.new" "$dir/env"
}

# sw_env_get DIR NAME [DEFAULT] : a recorded setting, in a subshell so the
# caller's environment is untouched
sw_env_get() {
	local dir=$1 name=$2 def=${3-}
	(
		unset "$name"
		# shellcheck disable=SC1091
		. "$dir/env" 2>/dev/null
		printf '%s\n' "${!name:-$def}"
	)
}

# sw_url DIR ROLE : the base URL a role of that run directory answers on
sw_url() {
	local dir=$1 role=$2 addr port
	addr=$(sw_env_get "$dir" LISTEN_ADDRESS 127.0.0.1)
	case $addr in 0.0.0.0 | '' | '*') addr=127.0.0.1 ;; ::) addr='[::1]' ;; esac
	case $role in
	gateway) port=$(sw_env_get "$dir" API_PORT 8080) ;;
	ingest) port=$(sw_env_get "$dir" INGEST_PORT 8081) ;;
	processor) port=$(sw_env_get "$dir" PROCESSOR_PORT 8082) ;;
	esac
	echo "http://$addr:$port"
}

# sw_pid DIR ROLE : the recorded pid of a role, empty when none
sw_pid() { cat "$1/$2.pid" 2>/dev/null; }

# sw_role_start DIR ROLE [QUEUE_TYPE] : start one role in the background
# with the recorded settings (QUEUE_TYPE overriding), log appended to
# DIR/ROLE.log, pid to DIR/ROLE.pid; $! is diplomd itself (exec). Disowned,
# so bash prints no "Killed" notice when a scenario SIGKILLs it.
sw_role_start() {
	local dir=$1 role=$2 qt=${3-}
	(
		# shellcheck disable=SC1091
		. "$dir/env"
		if [ -n "$qt" ]; then
			export QUEUE_TYPE="$qt"
		fi
		exec "${DIPLOMD:-diplomd}" --role="$role"
	) >>"$dir/$role.log" 2>&1 &
	echo $! >"$dir/$role.pid"
	disown $!
}

# sw_pid_wait PID SECONDS : wait for PID to end; a child of this shell is
# reaped with wait (so it is no zombie), anyone else's is polled; returns 1
# when it still runs after SECONDS
sw_pid_wait() {
	local pid=$1 secs=$2
	for _ in $(seq $((secs * 10))); do
		sw_pid_running "$pid" || break
		sleep 0.1
	done
	sw_pid_running "$pid" && return 1
	# a child of ours that ended: reap it (no job notice)
	if [ "$(ps -o ppid= -p "$pid" 2>/dev/null | tr -d ' ')" = "$BASHPID" ]; then
		{ wait "$pid"; } 2>/dev/null
	fi
	return 0
}

# sw_pid_running PID : PID exists and is not a zombie (an orphan's zombie
# may linger until its new parent reaps it, yet it has ended)
sw_pid_running() {
	kill -0 "$1" 2>/dev/null &&
		[ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" != Z ]
}

# sw_role_stop DIR ROLE [SIGNAL] [SECONDS] : signal a role and wait for it
# to end (SIGTERM lets it drain, so the bound is generous); 1 if it did not
sw_role_stop() {
	local dir=$1 role=$2 sig=${3:-TERM} secs=${4:-60} pid
	pid=$(sw_pid "$dir" "$role")
	[ -n "$pid" ] || return 0
	kill "-$sig" "$pid" 2>/dev/null
	if ! sw_pid_wait "$pid" "$secs"; then
		sw_say "$role (pid $pid) did not stop within ${secs}s"
		return 1
	fi
	rm -f "$dir/$role.pid"
}

# sw_http_status URL : the status a GET of URL answers (000: no answer)
sw_http_status() {
	curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1"
}

# sw_wait_health URL SECONDS : wait until URL/health answers 200
sw_wait_health() {
	local url=$1 secs=$2
	for _ in $(seq $((secs * 10))); do
		[ "$(sw_http_status "$url/health")" = 200 ] && return 0
		sleep 0.1
	done
	return 1
}

# sw_backlog PROC_URL : the processor's backlog (.queue.CurrentSize), empty
# when it does not answer
sw_backlog() {
	curl -s --max-time 3 "$1/stats" 2>/dev/null |
		jq -r '.queue.CurrentSize // empty' 2>/dev/null
}

# sw_processed PROC_URL : the processor's .pool.ProcessedCount, empty when
# it does not answer
sw_processed() {
	curl -s --max-time 3 "$1/stats" 2>/dev/null |
		jq -r '.pool.ProcessedCount // empty' 2>/dev/null
}

# sw_wait_drained PROC_URL SECONDS : wait until the backlog is 0 and the
# processed count has not moved for a second (the nats figure is a cache a
# few hundred ms old, so one zero is not enough); 1 on timeout
sw_wait_drained() {
	local url=$1 secs=$2 size count last='' calm=0
	for _ in $(seq $((secs * 5))); do
		size=$(sw_backlog "$url")
		count=$(sw_processed "$url")
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

# sw_nats_reachable NATS_URL : something listens at the first server of
# the (comma-separated) list, so a switch to nats can succeed
sw_nats_reachable() {
	local hp=${1%%,*}
	hp=${hp#*://}
	hp=${hp##*@}
	hp=${hp%%/*}
	case $hp in *:*) ;; *) hp=$hp:4222 ;; esac
	timeout 2 bash -c "exec 3<>/dev/tcp/${hp%:*}/${hp##*:}" 2>/dev/null
}

# sw_print_health DIR : one line per role: role, status, /health body
sw_print_health() {
	local dir=$1 role url body code
	for role in gateway ingest processor; do
		url=$(sw_url "$dir" "$role")
		body=$(curl -s --max-time 2 -w '\n%{http_code}' "$url/health")
		code=${body##*$'\n'}
		body=${body%$'\n'*}
		printf '%-10s %s %s\n' "$role" "$code" "${body:-(no answer)}"
	done
}

# sw_switch DIR QUEUE_TYPE : switch the stack of DIR to another backend
# without losing a message: stop ingest (clients get 503 from the gateway
# and retry), wait for the processor's backlog to reach 0, restart the
# processor and then ingest with the new QUEUE_TYPE; the gateway stays.
# SWITCH_DRAIN_SECONDS (120) bounds the wait for the backlog.
sw_switch() {
	local dir=$1 qt=$2 proc ing old nats_url
	proc=$(sw_url "$dir" processor)
	ing=$(sw_url "$dir" ingest)
	old=$(sw_env_get "$dir" QUEUE_TYPE memory)
	case $qt in
	memory) ;;
	nats)
		nats_url=$(sw_env_get "$dir" NATS_URL nats://localhost:4222)
		if ! sw_nats_reachable "$nats_url"; then
			sw_say "switch: no NATS server at $nats_url;" \
				"start one (nats-server -js) and set NATS_URL"
			return 1
		fi
		;;
	*) sw_say "switch: unknown queue type '$qt' (memory or nats)"; return 2 ;;
	esac
	sw_say "switch: $old -> $qt"
	sw_say "switch: stopping ingest"
	sw_role_stop "$dir" ingest TERM 60 || return 1
	sw_say "switch: waiting for the processor's backlog to reach 0"
	if ! sw_wait_drained "$proc" "${SWITCH_DRAIN_SECONDS:-120}"; then
		sw_say "switch: backlog still $(sw_backlog "$proc") after" \
			"${SWITCH_DRAIN_SECONDS:-120}s; restarting ingest on $old," \
			"nothing switched"
		sw_role_start "$dir" ingest
		return 1
	fi
	sw_say "switch: restarting the processor with QUEUE_TYPE=$qt"
	sw_role_stop "$dir" processor TERM 60 || return 1
	sw_env_set "$dir" QUEUE_TYPE "$qt"
	sw_role_start "$dir" processor
	if ! sw_wait_health "$proc" 15; then
		sw_say "switch: the processor is not healthy on $qt" \
			"(log: $dir/processor.log)"
		return 1
	fi
	sw_say "switch: restarting ingest with QUEUE_TYPE=$qt"
	sw_role_start "$dir" ingest
	if ! sw_wait_health "$ing" 15; then
		sw_say "switch: ingest is not healthy on $qt (log: $dir/ingest.log)"
		return 1
	fi
	return 0
}
