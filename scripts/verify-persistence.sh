#!/bin/bash
# Persistence verification: every message ingest accepted ends with exactly
# one row in the result store, processed or failed with a reason.
#   scripts/verify-persistence.sh [--messages N] [--scenario S] [--backend B]
#                                 [--short]
#     --messages N   messages per scenario (default 2000)
#     --scenario S   all (default), or one or a comma-separated list of:
#                    restart crash broker switch disk readonly crashloop
#                    ingest batch broker-down slow cluster partition
#     --backend B    nats (default) or memory
#     --short        faults held for seconds, not the minute or so of a
#                    full run (what `make check` runs)
# Each scenario starts a fresh stack of its own (nats-server on a free
# loopback port with a fresh store, the three diplomd roles, a fresh results
# database), sends its messages with diplom-loadgen --retry --record, faults
# the stack meanwhile, waits until the processor has worked off everything,
# and compares the recorded accepted ids with the results database:
#   restart      processor SIGTERM, then started again
#   crash        processor SIGKILL (while it has a backlog), then started
#   broker       nats-server SIGKILL, restarted on the same store and port
#   switch       BACKEND -> the other -> BACKEND (scripts/switch-queue.sh's
#                logic, run_switch in tests/lib.sh)
#   disk         the result store on a small tmpfs, filled for 60 s (5)
#                under load; /health must be 503 naming the result store;
#                with nats the processor is SIGKILLed while the disk is full
#                (whatever it acked before its commit would be lost), then
#                space is given back
#   readonly     the result store's files made immutable (chattr +i on an
#                ext4 loop filesystem: read-only even for root) for 30 s (5)
#   crashloop    processor SIGKILLed 5 times in a row while it holds the
#                same messages (PROCESSING_DELAY_MS 10 s, 6 s short)
#   ingest       ingest SIGKILLed mid-run, then started again
#   batch        the load sent in batches of 50 (diplom-loadgen --batch to
#                /api/v1/ingest/batch), the processor SIGKILLed mid-run and
#                started again; with memory, whose processor loses its
#                backlog to a SIGKILL by design, ingest is SIGKILLed instead
#   broker-down  nats-server stopped for 30 s (5) under steady load; every
#                message must be accepted once it is back
#   slow         PROCESSING_DELAY_MS longer than NATS_ACK_WAIT: no message
#                may be delivered twice (work-in-progress acks)
#   cluster      a three-node JetStream cluster (tests/lib-cluster.sh, each
#                node on its own address 127.0.1.N), an R3 stream and
#                NATS_URL listing all three: the stream leader SIGKILLed
#                and started again, then another node; the windows in
#                which ingest answered 503 are reported
#   partition    the same cluster, the node ingest uses cut off from the
#                other two by nft rules for 20 s (8) under load, then
#                healed (needs root and nft)
# A scenario without meaning for the backend (a broker fault with memory)
# or that needs root it does not have (disk, readonly, partition) shows n/a.
# Prints one table; exit status 1 when an accepted message has no row (or a
# message got a second row, or broker-down left one unaccepted), 2 on a
# usage error or when a stack could not be run or a fault not made, 0
# otherwise. The memory backend is not durable across SIGKILL, so
# `--backend memory --scenario crash` reports a loss and exits 1.
# Binaries: $DIPLOMD and $DIPLOM_LOADGEN, else src/diplomd and
# src/loadgen/diplom-loadgen under $top_builddir (default:
# the build next to this script). VERIFY_KEEP=1 keeps the work
# directory. VERIFY_START_WAIT (60) bounds, in seconds, the wait for a
# started nats-server or role to answer. Progress goes to stderr, one
# section a scenario ending in a verdict line; a scenario that failed adds
# the last lines of its roles' and nats-server's logs and, for a loss, the
# first lost ids and what the processor and the stream said of them.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../tests/lib.sh"
# shellcheck source=tests/lib-cluster.sh
. "$(dirname "$0")/../tests/lib-cluster.sh"

MESSAGES=2000
SCENARIO=all
BACKEND=nats
SHORT=0
LOAD_SECONDS=${VERIFY_LOAD_SECONDS:-5}
# a first start on a cold machine busy with other tests can take long
START_WAIT=${VERIFY_START_WAIT:-60}
ALL_SCENARIOS="restart crash broker switch disk readonly crashloop ingest batch broker-down slow cluster partition"

# usage [STATUS] : the header above is the help text
usage() {
	script_help 64
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
	--short) SHORT=1 ;;
	-h | --help) usage 0 ;;
	*) echo "verify-persistence: unknown argument '$1'" >&2; exit 2 ;;
	esac
	shift
done
case $MESSAGES in
'' | *[!0-9]* | 0) echo "verify-persistence: --messages must be a positive number" >&2; exit 2 ;;
esac
if [ "$SCENARIO" = all ]; then
	SCENARIOS=$ALL_SCENARIOS
else
	SCENARIOS=${SCENARIO//,/ }
	for s in $SCENARIOS; do
		case " $ALL_SCENARIOS " in
		*" $s "*) ;;
		*) echo "verify-persistence: unknown scenario '$s'" >&2; exit 2 ;;
		esac
	done
fi
case $BACKEND in
nats) OTHER=memory ;;
memory) OTHER=nats ;;
*) echo "verify-persistence: unknown backend '$BACKEND' (nats or memory)" >&2; exit 2 ;;
esac
case $LOAD_SECONDS in
'' | *[!0-9]* | 0) echo "verify-persistence: VERIFY_LOAD_SECONDS must be a positive number" >&2; exit 2 ;;
esac
case $START_WAIT in
'' | *[!0-9]* | 0) echo "verify-persistence: VERIFY_START_WAIT must be a positive number" >&2; exit 2 ;;
esac
# how long each timed fault holds, and the crash loop's work per message
if [ "$SHORT" -eq 1 ]; then
	DISK_S=5 READONLY_S=5 DOWN_S=5 CRASHLOOP_DELAY_MS=6000
	PARTITION_SECONDS=8
else
	DISK_S=60 READONLY_S=30 DOWN_S=30 CRASHLOOP_DELAY_MS=10000
	PARTITION_SECONDS=20
fi
export PARTITION_SECONDS
CRASHLOOP_KILLS=5
# messages a request in the batch scenario
BATCH=50

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
# (the harness ends the loadgen and the broker it tracks), then take away
# the filesystems the disk and readonly scenarios mounted
# shellcheck disable=SC2317 # run at exit through T_AT_EXIT
stop_stacks() {
	local d
	for d in $STACK_DIRS; do
		run_stack_stop "$d"
	done
	for d in $MOUNTS; do
		chattr -R -i "$d" 2>/dev/null
		umount "$d" 2>/dev/null
	done
}
T_AT_EXIT=stop_stacks
MOUNTS=""

# stamp TEXT : progress on stderr, timestamped, the table alone on stdout
# shellcheck disable=SC2317 # run by say, through SAY_WITH
stamp() { echo "[$(date +%T)] $*" >&2; }
SAY_WITH=stamp

# stamp_switch TEXT : run_switch's progress, indented under its scenario
# shellcheck disable=SC2317 # run by say, through SAY_WITH
stamp_switch() { stamp "    $*"; }

# nats_start DIR : start_nats, whose wait for the port is 5 s, given up to
# START_WAIT while the nats-server it started still runs
nats_start() {
	local until=$((SECONDS + START_WAIT))
	start_nats "$1" && return 0
	while [ "$SECONDS" -lt "$until" ] && pid_running "$NATS_PID"; do
		if wait_nats_port; then
			say "  (nats-server took more than 5 s to take connections)"
			return 0
		fi
	done
	say "  nats-server did not take connections on port $NATS_PORT"
	return 1
}

# stack_start DIR QUEUE_TYPE : the three roles on fresh free ports, settings
# recorded in DIR/env (the run-directory layout run_switch works on)
stack_start() {
	local dir=$1 qt=$2 role
	RESULTS=${RESULTS:-$dir/results.db}
	stack_ports
	export QUEUE_TYPE=$qt
	# port 1: no broker
	export NATS_URL=${CLUSTER_URLS:-nats://127.0.0.1:${NATS_PORT:-1}}
	STACK_DIRS="$STACK_DIRS $dir"
	run_env_save "$dir"
	run_role_start "$dir" processor
	wait_health "$PROC" "$START_WAIT" ||
		{ say "  the processor did not become healthy"; return 1; }
	run_role_start "$dir" ingest
	run_role_start "$dir" gateway
	for role in ingest gateway; do
		wait_health "$(run_url "$dir" "$role")" "$START_WAIT" ||
			{ say "  $role did not become healthy"; return 1; }
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
	wait_health "$PROC" "$START_WAIT" ||
		{ say "  the restarted processor is not healthy"; return 1; }
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
	nats_start "$dir" || return 1
	if ! wait_health "$ING" "$START_WAIT" || ! wait_health "$PROC" "$START_WAIT"; then
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

# store_says PROC_URL WORDS : /health is 503 and its reason has WORDS
# shellcheck disable=SC2317 # run through wait_until
store_says() {
	curl -s --max-time 2 "$1/health" |
		jq -e --arg w "$2" '.healthy == false and (.reason | contains($w))' \
		>/dev/null 2>&1
}

# store_mount DIR KIND : a filesystem of its own under DIR/store for the
# result store, tmpfs (disk) or ext4 on a loop file (readonly: ext4 refuses
# writes to an immutable file that is open already, tmpfs does not)
store_mount() {
	local dir=$1/store
	mkdir -p "$dir"
	case $2 in
	tmpfs) mount -t tmpfs -o size=16m tmpfs "$dir" ;;
	ext4)
		truncate -s 64m "$1/store.img" &&
			mkfs.ext4 -q -F "$1/store.img" &&
			mount -o loop "$1/store.img" "$dir"
		;;
	esac || { say "  cannot mount a $2 filesystem for the result store"; return 1; }
	MOUNTS="$MOUNTS $dir"
}

# store_hold_broken DIR SECONDS WHAT : with the store broken, check for
# SECONDS that /health says so and that no row is added meanwhile
store_hold_broken() {
	local dir=$1 secs=$2 what=$3 rows0 rows1
	if ! wait_until 15 store_says "$PROC" "result store"; then
		say "  /health did not report the $what result store"
		return 1
	fi
	say "  /health: $(curl -s --max-time 2 "$PROC/health" | jq -c .)"
	rows0=$(sql "$RESULTS" "SELECT count(*) FROM results" 2>/dev/null)
	sleep "$secs"
	rows1=$(sql "$RESULTS" "SELECT count(*) FROM results" 2>/dev/null)
	say "  rows while $what: ${rows0:-?} -> ${rows1:-?}"
	[ "$rows0" = "$rows1" ] || { say "  rows were added to a $what store"; return 1; }
}

# disk_fault DIR : fill the store's filesystem for DISK_S under load; with
# nats SIGKILL the processor while full (nothing it holds was acked: it
# must all come again), give the space back, start the processor again
disk_fault() {
	local dir=$1
	wait_accepted disk $((MESSAGES * 25 / 100)) ||
		say "  (the load ended before 25% was accepted)"
	say "  result store's filesystem full for ${DISK_S}s"
	dd if=/dev/zero of="$dir/store/fill" bs=64k >/dev/null 2>&1
	sync
	store_hold_broken "$dir" "$DISK_S" full || return 1
	if [ "$BACKEND" = nats ]; then
		say "  processor SIGKILL while the disk is full"
		run_role_stop "$dir" processor KILL 10 || return 1
	fi
	rm -f "$dir/store/fill"
	say "  space given back"
	if [ "$BACKEND" = nats ]; then
		run_role_start "$dir" processor
	fi
	wait_health "$PROC" 30 || { say "  the processor did not recover"; return 1; }
	say "  processor healthy again"
}

# readonly_fault DIR : the store's files and directory immutable for
# READONLY_S under load, then writable again
readonly_fault() {
	local dir=$1
	wait_accepted readonly $((MESSAGES * 25 / 100)) ||
		say "  (the load ended before 25% was accepted)"
	say "  result store read-only for ${READONLY_S}s (chattr +i)"
	chattr +i "$RESULTS" "$RESULTS-wal" "$dir/store" 2>/dev/null
	store_hold_broken "$dir" "$READONLY_S" read-only
	local rc=$?
	chattr -i "$RESULTS" "$RESULTS-wal" "$dir/store" 2>/dev/null
	say "  writable again"
	[ "$rc" -eq 0 ] || return 1
	wait_health "$PROC" 30 || { say "  the processor did not recover"; return 1; }
	say "  processor healthy again"
}

# crashloop_fault DIR : SIGKILL the processor CRASHLOOP_KILLS times, each
# time once it holds the messages again (their ack wait has passed since
# the last one died), then let one live
crashloop_fault() {
	local dir=$1 k wait_s
	wait_s=$(( ${NATS_ACK_WAIT%s} + 2 ))
	wait_accepted crashloop "$MESSAGES_NOW" ||
		say "  (not all messages were accepted)"
	sleep 1
	for k in $(seq "$CRASHLOOP_KILLS"); do
		say "  processor SIGKILL $k/$CRASHLOOP_KILLS, rows so far: $(sql "$RESULTS" "SELECT count(*) FROM results" 2>/dev/null)"
		run_role_stop "$dir" processor KILL 10 || return 1
		run_role_start "$dir" processor
		wait_health "$PROC" "$START_WAIT" ||
			{ say "  the processor did not start"; return 1; }
		# the messages come back once their ack wait ran out
		sleep "$wait_s"
	done
	say "  processor left running"
}

# ingest_kill DIR LABEL : SIGKILL ingest mid-run (once 35% of LABEL's
# messages were accepted) and start it again
ingest_kill() {
	local dir=$1
	wait_accepted "$2" $((MESSAGES * 35 / 100)) ||
		say "  (the load ended before 35% was accepted)"
	say "  ingest SIGKILL"
	run_role_stop "$dir" ingest KILL 10 || return 1
	sleep 0.5
	run_role_start "$dir" ingest
	wait_health "$ING" "$START_WAIT" || { say "  ingest did not start again"; return 1; }
	say "  ingest back"
}

# broker_down DIR : stop nats-server for DOWN_S under steady load, start it
# again on the same store
broker_down() {
	local dir=$1
	wait_accepted broker-down $((MESSAGES * 25 / 100)) ||
		say "  (the load ended before 25% was accepted)"
	say "  nats-server stopped for ${DOWN_S}s"
	stop_nats TERM
	sleep "$DOWN_S"
	nats_start "$dir" || return 1
	if ! wait_health "$ING" 30 || ! wait_health "$PROC" 30; then
		say "  the daemons did not recover after the broker came back"
		return 1
	fi
	say "  nats-server back, ingest and processor healthy again"
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
	disk) disk_fault "$dir" ;;
	readonly) readonly_fault "$dir" ;;
	crashloop) crashloop_fault "$dir" ;;
	ingest) ingest_kill "$dir" ingest ;;
	batch)
		if [ "$BACKEND" = nats ]; then
			wait_accepted "$name" $((MESSAGES * 35 / 100)) ||
				say "  (the load ended before 35% was accepted)"
			processor_bounce "$dir" KILL
		else
			ingest_kill "$dir" batch
		fi
		;;
	broker-down) broker_down "$dir" ;;
	slow) : ;;
	cluster | partition)
		wait_accepted "$name" $((MESSAGES * 10 / 100)) ||
			say "  (the load ended before 10% was accepted)"
		"scenario_$name" "$dir" || return 1
		say "  $SCENARIO_FIGURES"
		;;
	esac
}

# count_sql LABEL RESULTS_DB :
#   accepted|processed|failed|lost|duplicate|redelivered
# (processed and failed: accepted messages with a row of that kind;
# duplicate: result rows beyond the first per message id, which the primary
# key should make impossible; redelivered: rows whose message was committed
# more than once)
count_sql() {
	sqlite3 -batch -noheader -separator '|' -cmd '.timeout 5000' "$SENT_DB" "
		ATTACH '$2' AS r;
		CREATE TEMP TABLE acc AS SELECT DISTINCT message_id FROM sent
		 WHERE label = '$1';
		SELECT
		 (SELECT count(*) FROM sent WHERE label = '$1'),
		 (SELECT count(*) FROM acc a JOIN r.results x USING (message_id)
		   WHERE x.success = 1),
		 (SELECT count(*) FROM acc a JOIN r.results x USING (message_id)
		   WHERE x.success = 0),
		 (SELECT count(*) FROM acc a WHERE NOT EXISTS
		   (SELECT 1 FROM r.results x WHERE x.message_id = a.message_id)),
		 (SELECT count(*) - count(DISTINCT message_id) FROM r.results),
		 (SELECT count(*) FROM acc a JOIN r.results x USING (message_id)
		   WHERE x.deliveries > 1);"
}

ROWS=""
LOST_ANY=0
HARNESS_ERR=0
ROW_FMT='%-12s %-20s %6s %9s %10s %7s %6s %15s %12s'

# add_row SCENARIO BACKEND SENT ACCEPTED PROCESSED FAILED LOST DUP REDELIVERED
# shellcheck disable=SC2059 # the format is ours
add_row() { ROWS="$ROWS$(printf "$ROW_FMT" "$@")"$'\n'; }

# can_mount : whether this shell may mount a filesystem (root, and not
# fakeroot's pretence of it), asked once
can_mount() {
	if [ -z "${CAN_MOUNT:-}" ]; then
		CAN_MOUNT=no
		mkdir -p "$T_TMP/probe"
		if mount -t tmpfs -o size=1m tmpfs "$T_TMP/probe" 2>/dev/null; then
			umount "$T_TMP/probe" && CAN_MOUNT=yes
		fi
	fi
	[ "$CAN_MOUNT" = yes ]
}

# not_applicable SCENARIO : why the scenario cannot run here, if it cannot
not_applicable() {
	case "$1 $BACKEND" in
	"broker memory" | "crashloop memory" | "broker-down memory" | "slow memory" | \
	"cluster memory" | "partition memory")
		echo "no broker with the memory backend" ;;
	partition*)
		{ can_mount && command -v nft >/dev/null && nft list tables >/dev/null 2>&1; } ||
			echo "cutting a node off needs root and nft" ;;
	disk* | readonly*)
		can_mount || echo "mounting a filesystem needs root" ;;
	esac
}

# scenario_settings NAME : the load and the processor's pace for NAME:
# sets MESSAGES_NOW, RATE, RETRIES and exports the processor's settings
scenario_settings() {
	local secs=$LOAD_SECONDS
	MESSAGES_NOW=$MESSAGES RETRIES=20
	export PROCESSOR_WORKERS=4 NATS_FETCH_BATCH=10 NATS_ACK_WAIT=2s
	case $1 in
	disk) secs=$((LOAD_SECONDS + DISK_S)) ;;
	readonly) secs=$((LOAD_SECONDS + READONLY_S)) ;;
	broker-down) secs=$((LOAD_SECONDS + DOWN_S)) RETRIES=$((DOWN_S * 3 + 20)) ;;
	# the cluster's faults and recoveries last up to half a minute
	cluster) secs=$((LOAD_SECONDS + 20)) RETRIES=200 ;;
	partition) secs=$((LOAD_SECONDS + PARTITION_SECONDS + 20)) RETRIES=200 ;;
	esac
	RATE=$(( (MESSAGES_NOW + secs - 1) / secs ))
	# process at ~70% of the rate, so a backlog builds and every
	# disruption finds messages queued
	PROCESSING_DELAY_MS=$(( (4 * 1000 * 10 + RATE * 7 - 1) / (RATE * 7) ))
	case $1 in
	crashloop)
		# each worker holds one message, all of them for the whole loop
		[ "$MESSAGES_NOW" -le 40 ] || MESSAGES_NOW=40
		RATE=1000 PROCESSOR_WORKERS=$MESSAGES_NOW NATS_FETCH_BATCH=1
		PROCESSING_DELAY_MS=$CRASHLOOP_DELAY_MS
		;;
	slow)
		# workers hold ten messages each, the last for 10 ack waits
		[ "$MESSAGES_NOW" -le 80 ] || MESSAGES_NOW=80
		RATE=1000 PROCESSOR_WORKERS=8 PROCESSING_DELAY_MS=2500
		;;
	esac
	export PROCESSING_DELAY_MS
}

# no_row_missing LABEL : every message of LABEL accepted so far has a row
# shellcheck disable=SC2317 # run through wait_until
no_row_missing() {
	local c
	c=$(count_sql "$1" "$RESULTS") || return 1
	[ "$(echo "$c" | cut -d'|' -f4)" = 0 ]
}

# cluster_done : stop a scenario's cluster, if it ran one
cluster_done() {
	[ -n "$CLUSTER_URLS" ] || return 0
	cluster_stop
	CLUSTER_URLS=""
}

# proc_metric NAME : one counter of the processor's /metrics
proc_metric() {
	curl -s --max-time 3 "$PROC/metrics" |
		awk -v n="$1" '$1 == n { print $2; exit }'
}

# tail_logs DIR : the last 30 lines of the logs of DIR's run (the roles,
# nats-server or the cluster's nodes, the loadgen when it said anything)
# into the progress log
tail_logs() {
	local f
	for f in "$1"/gateway.log "$1"/ingest.log "$1"/processor.log \
		"$1"/nats-server.log "$1"/n[0-9].log "$1"/loadgen.log; do
		[ -s "$f" ] || continue
		echo "    --- ${f#"$T_TMP"/} (last 30 lines)"
		tail -n 30 "$f" | sed 's/^/    | /'
	done >&2
}

# js_port : a port of the scenario's broker (the first node of a cluster),
# empty without one
js_port() {
	local u=${CLUSTER_URLS:-${NATS_PORT:+nats://127.0.0.1:$NATS_PORT}}
	u=${u%%,*}
	[ -n "$u" ] && echo "${u##*:}"
}

# js_request SUBJECT : a request to the broker (the JetStream API), its
# answer on stdout; nothing when none came within 3 s
js_request() {
	local port line inbox=_INBOX.verify.$$
	local LC_ALL=C
	port=$(js_port)
	[ -n "$port" ] || return 1
	exec 6<>"/dev/tcp/127.0.0.1/$port" || return 1
	read -r -t 3 line <&6	# INFO
	printf 'CONNECT {"verbose":false,"pedantic":false}\r\nSUB %s 1\r\nPUB %s %s 0\r\n\r\n' \
		"$inbox" "$1" "$inbox" >&6
	while read -r -t 3 line <&6; do
		case $line in
		MSG*)
			read -r -t 3 line <&6
			printf '%s\n' "${line%$'\r'}"
			break
			;;
		PING*) printf 'PONG\r\n' >&6 ;;
		-ERR*) break ;;
		esac
	done
	exec 6<&-
}

# lost_ids LABEL N : up to N accepted ids of LABEL without a row, the
# first accepted first, each with its accepted_at (Unix ms)
lost_ids() {
	sqlite3 -batch -noheader -separator ' ' -cmd '.timeout 5000' "$SENT_DB" "
		ATTACH '$RESULTS' AS r;
		SELECT message_id, accepted_at FROM sent s WHERE label = '$1'
		 AND NOT EXISTS (SELECT 1 FROM r.results x
		  WHERE x.message_id = s.message_id)
		 ORDER BY accepted_at LIMIT $2;"
}

# loss_report DIR LABEL : while the stack still runs, the first accepted
# messages of LABEL without a row: when each was accepted, what the
# processor's /results says of it, which logs name it; then the processor's
# figures and the stream's and its consumer's
loss_report() {
	local dir=$1 id at code body logs info
	lost_ids "$2" 5 >"$dir/lost" 2>/dev/null
	[ -s "$dir/lost" ] || return 0
	say "  accepted messages without a row, before the stack is stopped (the first 5):"
	while read -r id at; do
		code=$(curl -s --max-time 3 -o "$dir/result.json" -w '%{http_code}' \
			"$PROC/results/$id")
		body=$(head -c 160 "$dir/result.json" 2>/dev/null)
		logs=$(grep -l -F "$id" "$dir"/*.log 2>/dev/null | xargs -r -n1 basename | tr '\n' ' ')
		say "    $id accepted $(date -d "@$((at / 1000))" +%T).$(printf %03d $((at % 1000))):" \
			"/results $code ${body:-}; named in: ${logs:-no log}"
	done <"$dir/lost"
	say "    processor /stats: $(curl -s --max-time 3 "$PROC/stats" | jq -c . 2>/dev/null)"
	[ -n "$(js_port)" ] || return 0
	info=$(js_request "\$JS.API.STREAM.INFO.$NATS_STREAM" |
		jq -c '.state // . | {messages, first_seq, last_seq, num_deleted}' 2>/dev/null)
	say "    stream $NATS_STREAM: ${info:-no answer}"
	info=$(js_request "\$JS.API.CONSUMER.LIST.$NATS_STREAM" |
		jq -c '[.consumers[]? | {name, num_pending, num_ack_pending,
			num_redelivered, delivered: .delivered.stream_seq,
			ack_floor: .ack_floor.stream_seq}]' 2>/dev/null)
	say "    its consumers: ${info:-no answer}"
}

# verdict DIR NAME KIND [WHY] : the last line of a scenario's progress:
# ok, n/a, HARNESS ERROR (the stack, the load or the fault failed: with a
# `-` row nothing could be counted) or LOSS (an accepted message without
# its one row); a failure adds the tails of the run's logs
verdict() {
	local dir=$1 name=$2 kind=$3 why=${4:-}
	case $kind in
	ok | n/a)
		say "  verdict: $kind"
		return 0
		;;
	harness) say "  verdict: HARNESS ERROR in $name: $why" ;;
	loss) say "  verdict: LOSS in $name: $why" ;;
	esac
	tail_logs "$dir"
	say "  end of $name's report"
}

# no_count NAME BACKEND DIR WHY : the `-` row of a scenario that could not
# be counted, reported as a harness error
no_count() {
	add_row "$1" "$2" - - - - - - -
	HARNESS_ERR=1
	verdict "$3" "$1" harness "row '-': $4"
}

# run_scenario NAME : one scenario on a fresh stack; adds its table row
run_scenario() {
	local name=$1 dir=$T_TMP/$1 backend=$BACKEND start=$BACKEND why
	local lg_rc counts accepted processed failed lost dup redel lg_acc
	local ok=1 redelivered url err='' loss=''
	local -a batch
	why=$(not_applicable "$name")
	if [ -n "$why" ]; then
		add_row "$name" "$BACKEND" n/a n/a n/a n/a n/a n/a n/a
		say "$name: n/a ($why)"
		return 0
	fi
	[ "$name" = switch ] && backend="$BACKEND>$OTHER>$BACKEND"
	mkdir -p "$dir"
	scenario_settings "$name"
	export QUEUE_SIZE=$((MESSAGES_NOW + 1000))
	export NATS_STREAM=VERIFY_${name^^} LOG_LEVEL=${LOG_LEVEL:-info}
	NATS_STREAM=${NATS_STREAM//-/_}
	NATS_PORT=""
	RESULTS=""
	case $name in disk | readonly) RESULTS=$dir/store/results.db ;; esac
	say "$name ($backend): $MESSAGES_NOW messages at $RATE/s, processing ${PROCESSING_DELAY_MS} ms x $PROCESSOR_WORKERS workers"
	case $name in
	disk) store_mount "$dir" tmpfs || { no_count "$name" "$backend" "$dir" "no filesystem for the store"; return; } ;;
	readonly) store_mount "$dir" ext4 || { no_count "$name" "$backend" "$dir" "no filesystem for the store"; return; } ;;
	esac
	case $name in
	cluster | partition)
		if ! cluster_start "$dir"; then
			no_count "$name" "$backend" "$dir" "the cluster did not start"
			cluster_done
			return
		fi
		export NATS_REPLICAS=3
		backend=nats-R3
		;;
	*)
		unset NATS_REPLICAS
		if [ "$BACKEND" = nats ] || [ "$name" = switch ]; then
			if ! nats_start "$dir"; then
				no_count "$name" "$backend" "$dir" "nats-server did not start"
				stop_nats
				return
			fi
		fi
		;;
	esac
	if ! stack_start "$dir" "$start"; then
		no_count "$name" "$backend" "$dir" "the stack did not start"
		run_stack_stop "$dir"; stop_nats; cluster_done
		return
	fi
	url=$GW/api/v1/ingest
	batch=()
	if [ "$name" = batch ]; then
		url=$url/batch
		batch=(--batch "$BATCH")
	fi
	"$DIPLOM_LOADGEN" --url "$url" "${batch[@]}" -n "$MESSAGES_NOW" -c 8 \
		--rate "$RATE" --retry "$RETRIES" --record "$SENT_DB" --label "$name" \
		--json >"$dir/loadgen.json" 2>"$dir/loadgen.log" &
	LG_PID=$!
	track "$LG_PID"
	disrupt "$name" "$dir" || { say "  the disruption failed"; ok=0; err="the fault failed"; }
	wait "$LG_PID"
	lg_rc=$?
	untrack "$LG_PID"
	LG_PID=""
	if [ "$lg_rc" -ne 0 ]; then
		say "  diplom-loadgen exited $lg_rc: $(tail -n 3 "$dir/loadgen.log")"
		ok=0
		err="${err:+$err; }diplom-loadgen exited $lg_rc"
	fi
	say "  load done: $(jq -c '{accepted, rejected, errors, retries, elapsed_s}' "$dir/loadgen.json" 2>/dev/null)"
	if wait_drained "$PROC" 120; then
		say "  processor drained: $(proc_processed "$PROC") processed by the last processor"
	else
		say "  the processor did not drain within 120 s (backlog $(proc_backlog "$PROC"))"
	fi
	# a backlog the broker reports can be behind: give the rows time
	if [ "$BACKEND" = nats ] && ! wait_until 60 no_row_missing "$name"; then
		say "  accepted messages still without a row 60 s after the drain"
	fi
	redelivered=$(proc_metric diplom_messages_redelivered_total)
	say "  deliveries the last processor saw again: ${redelivered:-?}"
	if [ "$name" = slow ] && [ "${redelivered:-1}" != 0 ]; then
		say "  FAIL: a message was delivered again while it was being processed"
		LOST_ANY=1
		loss="a message was delivered twice"
	fi
	loss_report "$dir" "$name"
	run_stack_stop "$dir"
	stop_nats
	cluster_done
	if ! counts=$(count_sql "$name" "$RESULTS"); then
		no_count "$name" "$backend" "$dir" "sent.db and the results could not be compared"
		return
	fi
	IFS='|' read -r accepted processed failed lost dup redel <<<"$counts"
	lg_acc=$(jq -r '.accepted // empty' "$dir/loadgen.json" 2>/dev/null)
	if [ -n "$lg_acc" ] && [ "$lg_acc" != "$accepted" ]; then
		say "  note: loadgen counted $lg_acc accepted, sent.db holds $accepted"
		# what the batch scenario proves rests on every accepted item
		# of a batch being recorded
		if [ "$name" = batch ]; then
			ok=0
			err="${err:+$err; }sent.db misses accepted items"
		fi
	fi
	add_row "$name" "$backend" "$MESSAGES_NOW" "$accepted" "$processed" \
		"$failed" "$lost" "$dup" "$redel"
	if [ "$lost" -gt 0 ] || [ "$dup" -gt 0 ]; then
		LOST_ANY=1
		say "  FAIL: $lost accepted message(s) without a row, $dup duplicate row(s)"
		loss="${loss:+$loss; }$lost of $accepted accepted without a row, $dup duplicate row(s)"
	fi
	if [ "$name" = broker-down ] && [ "$accepted" -lt "$MESSAGES_NOW" ]; then
		LOST_ANY=1
		say "  FAIL: only $accepted of $MESSAGES_NOW were accepted once the broker was back"
		loss="${loss:+$loss; }only $accepted of $MESSAGES_NOW accepted"
	fi
	[ "$ok" -eq 1 ] || HARNESS_ERR=1
	if [ -n "$loss" ]; then
		verdict "$dir" "$name" loss "$loss${err:+ (and a harness error: $err)}"
	elif [ "$ok" -ne 1 ]; then
		verdict "$dir" "$name" harness "$err (the row's figures stand)"
	else
		verdict "$dir" "$name" ok
	fi
}

t0=$(date +%s)
say "verify-persistence: backend $BACKEND, scenarios: $SCENARIOS; work dir $T_TMP"
for s in $SCENARIOS; do
	run_scenario "$s"
done
# shellcheck disable=SC2059 # the format is ours
printf "$ROW_FMT\n" scenario backend sent accepted processed failed lost \
	"duplicate rows" redelivered
printf '%s' "$ROWS"
say "verify-persistence: $(( $(date +%s) - t0 )) s"
if [ "$LOST_ANY" -ne 0 ]; then
	exit 1
fi
[ "$HARNESS_ERR" -eq 0 ] || exit 2
exit 0
