#!/bin/bash
# Persistence verification: prove that no message ingest accepted is lost.
#   scripts/verify-persistence.sh [--messages N] [--scenario S] [--backend B]
#     --messages N   messages per scenario (default 2000)
#     --scenario S   all (default), restart, crash, broker or switch
#     --backend B    nats (default) or memory
# Each scenario starts a fresh stack of its own (nats-server on a free
# loopback port with a fresh store, the three diplomd roles, a fresh results
# database), sends N messages with diplom-loadgen --retry --record at a rate
# that takes VERIFY_LOAD_SECONDS (5) seconds, disrupts the stack meanwhile,
# waits until the processor has processed everything, and compares the
# recorded accepted ids with the results database in SQLite:
#   restart  processor SIGTERM, then started again
#   crash    processor SIGKILL (while it has a backlog), then started again
#   broker   nats-server SIGKILL, restarted on the same store and port
#            (the daemons recover by themselves; n/a with --backend memory)
#   switch   BACKEND -> the other -> BACKEND, with scripts/switch-queue.sh's
#            logic (run_switch in tests/lib.sh)
# Prints one table; exit status 1 when an accepted message was lost (or a
# message got a second result row), 2 on a usage error or when a stack
# could not be run, 0 otherwise. The memory backend is not durable across
# SIGKILL, so `--backend memory --scenario crash` reports a loss and exits 1.
# Binaries: $DIPLOMD and $DIPLOM_LOADGEN, else src/diplomd and
# src/loadgen/diplom-loadgen under $top_builddir (default:
# the build next to this script). VERIFY_KEEP=1 keeps the work
# directory.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../tests/lib.sh"

MESSAGES=2000
SCENARIO=all
BACKEND=nats
LOAD_SECONDS=${VERIFY_LOAD_SECONDS:-5}

# usage [STATUS] : the header above is the help text
usage() {
	script_help 25
	exit "${1:-2}"
}

# opt_value NAME VALUE : a missing option argument is a usage error
opt_value() {
	[ -n "$2" ] || { echo "verify-persistence: $1 needs a value" >&2; usage 2 >&2; }
	printf '%s\n' "$2"
}

while [ $# -gt 0 ]; do
	case $1 in
	--messages) MESSAGES=$(opt_value "$1" "${2:-}") || exit 2; shift ;;
	--messages=*) MESSAGES=${1#*=} ;;
	--scenario) SCENARIO=$(opt_value "$1" "${2:-}") || exit 2; shift ;;
	--scenario=*) SCENARIO=${1#*=} ;;
	--backend) BACKEND=$(opt_value "$1" "${2:-}") || exit 2; shift ;;
	--backend=*) BACKEND=${1#*=} ;;
	-h | --help) usage 0 ;;
	*) echo "verify-persistence: unknown argument '$1'" >&2; exit 2 ;;
	esac
	shift
done
case $MESSAGES in
'' | *[!0-9]* | 0) echo "verify-persistence: --messages must be a positive number" >&2; exit 2 ;;
esac
case $SCENARIO in
all) SCENARIOS="restart crash broker switch" ;;
restart | crash | broker | switch) SCENARIOS=$SCENARIO ;;
*) echo "verify-persistence: unknown scenario '$SCENARIO'" >&2; exit 2 ;;
esac
case $BACKEND in
nats) OTHER=memory ;;
memory) OTHER=nats ;;
*) echo "verify-persistence: unknown backend '$BACKEND' (nats or memory)" >&2; exit 2 ;;
esac
case $LOAD_SECONDS in
'' | *[!0-9]* | 0) echo "verify-persistence: VERIFY_LOAD_SECONDS must be a positive number" >&2; exit 2 ;;
esac

[ -x "$DIPLOMD" ] ||
	{ echo "verify-persistence: diplomd not found; build it or set DIPLOMD" >&2; exit 2; }
[ -x "$DIPLOM_LOADGEN" ] ||
	{ echo "verify-persistence: diplom-loadgen not found; build it or set DIPLOM_LOADGEN" >&2; exit 2; }
export DIPLOMD
needs="curl jq sqlite3"
case "$BACKEND $SCENARIOS" in nats* | *switch*) needs="$needs nats-server" ;; esac
for tool in $needs; do
	command -v "$tool" >/dev/null ||
		{ echo "verify-persistence: $tool is required" >&2; exit 2; }
done

# the work directory is the harness's $T_TMP: one run directory per scenario
SENT_DB=$T_TMP/sent.db
LG_PID=""
STACK_DIRS=""
T_KEEP_DIR=${VERIFY_KEEP:-}

# stop_stacks : on every exit, stop each scenario's roles by their pid files
# (the harness ends the loadgen and the broker it tracks)
# shellcheck disable=SC2317 # run at exit through T_AT_EXIT
stop_stacks() {
	local d
	for d in $STACK_DIRS; do
		run_stack_stop "$d"
	done
}
T_AT_EXIT=stop_stacks

# stamp TEXT : progress on stderr, timestamped, the table alone on stdout
# shellcheck disable=SC2317 # run by say, through SAY_WITH
stamp() { echo "[$(date +%T)] $*" >&2; }
SAY_WITH=stamp

# stamp_switch TEXT : run_switch's progress, indented under its scenario
# shellcheck disable=SC2317 # run by say, through SAY_WITH
stamp_switch() { stamp "    $*"; }

# stack_start DIR QUEUE_TYPE : the three roles on fresh free ports, settings
# recorded in DIR/env (the run-directory layout run_switch works on)
stack_start() {
	local dir=$1 qt=$2 role
	RESULTS=$dir/results.db
	stack_ports
	export QUEUE_TYPE=$qt
	export NATS_URL=nats://127.0.0.1:${NATS_PORT:-1}	# port 1: no broker
	STACK_DIRS="$STACK_DIRS $dir"
	run_env_save "$dir"
	run_role_start "$dir" processor
	wait_health "$PROC" 15 || { say "the processor did not become healthy"; return 1; }
	run_role_start "$dir" ingest
	run_role_start "$dir" gateway
	for role in ingest gateway; do
		wait_health "$(run_url "$dir" "$role")" 15 ||
			{ say "$role did not become healthy"; return 1; }
	done
}

# accepted_so_far LABEL : rows the loadgen has committed to sent.db so far
accepted_so_far() { sent_count "$SENT_DB" "$1"; }

# wait_accepted LABEL COUNT : wait (bounded) until COUNT messages of the
# run were accepted, so the disruption lands while load is flowing
wait_accepted() {
	local label=$1 want=$2
	for _ in $(seq $((LOAD_SECONDS * 30))); do
		[ "$(accepted_so_far "$label")" -ge "$want" ] && return 0
		kill -0 "$LG_PID" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# wait_backlog PROC_URL : wait up to 3 s for a non-empty backlog, so a kill
# finds messages queued; prints the backlog seen
wait_backlog() {
	local size=0
	for _ in $(seq 30); do
		size=$(proc_backlog "$1")
		[ "${size:-0}" -gt 0 ] && break
		sleep 0.1
	done
	echo "${size:-0}"
}

# processor_bounce DIR SIGNAL : stop the processor with SIGNAL while load
# runs and start it again (same settings)
processor_bounce() {
	local dir=$1 sig=$2 backlog
	backlog=$(wait_backlog "$PROC")
	say "  processor SIG$sig with a backlog of $backlog"
	run_role_stop "$dir" processor "$sig" 60 || return 1
	run_role_start "$dir" processor
	wait_health "$PROC" 15 || { say "  the restarted processor is not healthy"; return 1; }
	say "  processor back"
}

# broker_bounce DIR : SIGKILL nats-server while load runs and start it on
# the same store and port; the daemons must reconnect by themselves
broker_bounce() {
	local dir=$1 backlog
	backlog=$(wait_backlog "$PROC")
	say "  nats-server SIGKILL with a backlog of $backlog"
	stop_nats KILL
	sleep 1
	start_nats "$dir" || return 1
	if ! wait_health "$ING" 20 || ! wait_health "$PROC" 20; then
		say "  the daemons did not recover after the broker restart"
		return 1
	fi
	say "  nats-server back, ingest and processor healthy again"
}

# queue_switch DIR QUEUE_TYPE : scripts/switch-queue.sh's switch, while the
# loadgen keeps sending (it retries the 503s of the ingest restart)
queue_switch() {
	say "  switch to $2"
	SAY_WITH=stamp_switch run_switch "$1" "$2" || return 1
	say "  now on $2"
}

# disrupt SCENARIO DIR : the scenario's disruption, once load is flowing
disrupt() {
	local name=$1 dir=$2 next
	case $name in
	restart | crash | broker)
		wait_accepted "$name" $((MESSAGES * 35 / 100)) ||
			say "  (the load ended before 35% was accepted)"
		case $name in
		restart) processor_bounce "$dir" TERM ;;
		crash) processor_bounce "$dir" KILL ;;
		broker) broker_bounce "$dir" ;;
		esac
		;;
	switch)
		wait_accepted "$name" $((MESSAGES * 20 / 100)) ||
			say "  (the load ended before 20% was accepted)"
		queue_switch "$dir" "$OTHER" || return 1
		# the clients' retries catch up in a burst after a switch: let
		# another 15% through the new backend before switching back
		next=$(( $(accepted_so_far "$name") + MESSAGES * 15 / 100 ))
		[ "$next" -ge $((MESSAGES * 60 / 100)) ] || next=$((MESSAGES * 60 / 100))
		[ "$next" -le $((MESSAGES * 95 / 100)) ] || next=$((MESSAGES * 95 / 100))
		wait_accepted "$name" "$next" ||
			say "  (the load ended before $next were accepted)"
		queue_switch "$dir" "$BACKEND" || return 1
		;;
	esac
}

# count_sql LABEL RESULTS_DB : accepted|processed|lost|duplicate|redelivered
# (duplicate: result rows beyond the first per message id, which the primary
# key should make impossible; redelivered: results with deliveries > 1)
count_sql() {
	sqlite3 -batch -noheader -separator '|' -cmd '.timeout 5000' "$SENT_DB" "
		ATTACH '$2' AS r;
		SELECT
		 (SELECT count(*) FROM sent WHERE label = '$1'),
		 (SELECT count(DISTINCT s.message_id) FROM sent s
		   JOIN r.results x ON x.message_id = s.message_id
		   WHERE s.label = '$1'),
		 (SELECT count(*) FROM sent s WHERE s.label = '$1' AND NOT EXISTS
		   (SELECT 1 FROM r.results x WHERE x.message_id = s.message_id)),
		 (SELECT count(*) - count(DISTINCT message_id) FROM r.results),
		 (SELECT count(*) FROM r.results x WHERE x.deliveries > 1
		   AND x.message_id IN (SELECT message_id FROM sent
		                        WHERE label = '$1'));"
}

ROWS=""
LOST_ANY=0
HARNESS_ERR=0

# add_row SCENARIO BACKEND SENT ACCEPTED PROCESSED LOST DUP REDELIVERED
add_row() { ROWS="$ROWS$(printf '%-9s %-20s %6s %9s %10s %6s %15s %12s' "$@")"$'\n'; }

# run_scenario NAME : one scenario on a fresh stack; adds its table row
run_scenario() {
	local name=$1 dir=$T_TMP/$1 backend=$BACKEND start=$BACKEND rate delay
	local lg_rc counts accepted processed lost dup redel lg_acc ok=1
	if [ "$name" = broker ] && [ "$BACKEND" = memory ]; then
		add_row "$name" memory n/a n/a n/a n/a n/a n/a
		say "$name: n/a with the memory backend (no broker)"
		return 0
	fi
	[ "$name" = switch ] && backend="$BACKEND>$OTHER>$BACKEND"
	mkdir -p "$dir"
	# pace the load over LOAD_SECONDS; process at ~70% of that rate so a
	# backlog builds and every disruption finds messages queued
	rate=$(( (MESSAGES + LOAD_SECONDS - 1) / LOAD_SECONDS ))
	delay=$(( (4 * 1000 * 10 + rate * 7 - 1) / (rate * 7) ))
	export PROCESSOR_WORKERS=4 PROCESSING_DELAY_MS=$delay
	export QUEUE_SIZE=$((MESSAGES + 1000)) NATS_ACK_WAIT=2s
	export NATS_STREAM=VERIFY_${name^^} LOG_LEVEL=${LOG_LEVEL:-info}
	NATS_PORT=""
	say "$name ($backend): $MESSAGES messages at $rate/s, processing ${delay} ms x 4 workers"
	if [ "$BACKEND" = nats ] || [ "$name" = switch ]; then
		start_nats "$dir" || { add_row "$name" "$backend" - - - - - -; HARNESS_ERR=1; return; }
	fi
	if ! stack_start "$dir" "$start"; then
		add_row "$name" "$backend" - - - - - -
		HARNESS_ERR=1
		run_stack_stop "$dir"; stop_nats
		return
	fi
	"$DIPLOM_LOADGEN" --url "$GW/api/v1/ingest" -n "$MESSAGES" -c 8 \
		--rate "$rate" --retry 20 --record "$SENT_DB" --label "$name" \
		--json >"$dir/loadgen.json" 2>"$dir/loadgen.log" &
	LG_PID=$!
	track "$LG_PID"
	disrupt "$name" "$dir" || { say "  the disruption failed"; ok=0; }
	wait "$LG_PID"
	lg_rc=$?
	untrack "$LG_PID"
	LG_PID=""
	[ "$lg_rc" -eq 0 ] || { say "  diplom-loadgen exited $lg_rc: $(tail -n 3 "$dir/loadgen.log")"; ok=0; }
	say "  load done: $(jq -c '{accepted, rejected, errors, retries, elapsed_s}' "$dir/loadgen.json" 2>/dev/null)"
	if wait_drained "$PROC" 90; then
		say "  processor drained: $(proc_processed "$PROC") processed by the last processor"
	else
		say "  the processor did not drain within 90 s (backlog $(proc_backlog "$PROC"))"
	fi
	run_stack_stop "$dir"
	stop_nats
	if ! counts=$(count_sql "$name" "$dir/results.db"); then
		add_row "$name" "$backend" - - - - - -
		HARNESS_ERR=1
		return
	fi
	IFS='|' read -r accepted processed lost dup redel <<<"$counts"
	lg_acc=$(jq -r '.accepted // empty' "$dir/loadgen.json" 2>/dev/null)
	if [ -n "$lg_acc" ] && [ "$lg_acc" != "$accepted" ]; then
		say "  note: loadgen counted $lg_acc accepted, sent.db holds $accepted"
	fi
	add_row "$name" "$backend" "$MESSAGES" "$accepted" "$processed" "$lost" "$dup" "$redel"
	if [ "$lost" -gt 0 ] || [ "$dup" -gt 0 ]; then
		LOST_ANY=1
		say "  FAIL: $lost accepted message(s) lost, $dup duplicate row(s)"
	fi
	[ "$ok" -eq 1 ] || HARNESS_ERR=1
}

t0=$(date +%s)
say "verify-persistence: backend $BACKEND, scenarios: $SCENARIOS; work dir $T_TMP"
for s in $SCENARIOS; do
	run_scenario "$s"
done
printf '%-9s %-20s %6s %9s %10s %6s %15s %12s\n' scenario backend sent \
	accepted processed lost "duplicate rows" redelivered
printf '%s' "$ROWS"
say "verify-persistence: $(( $(date +%s) - t0 )) s"
if [ "$LOST_ANY" -ne 0 ]; then
	exit 1
fi
[ "$HARNESS_ERR" -eq 0 ] || exit 2
exit 0
