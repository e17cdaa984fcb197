#!/bin/bash
# A three-node JetStream cluster (tests/lib-cluster.sh) with an R3 stream
# under a steady load whose client retries every 503, each scenario on a
# fresh cluster and stack:
#   cluster    the stream leader is SIGKILLed and started again; once it
#              is current, another node is SIGKILLed and started again
#   partition  the node ingest is connected to is cut off from the other
#              two for 20 s (it stays reachable by ingest), then healed
# Each time every accepted message has exactly one result row, the
# processor drains, and the windows in which ingest answered 503 are noted.
# At the end no node of the test runs and its nft table is gone. The
# partition needs nft and root; without them it is skipped.
# CLUSTER_SCENARIOS picks scenarios ("cluster partition"); CLUSTER_KEEP=1
# keeps the work directory (node, role and probe logs per scenario).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-cluster.sh"
need_nats
need_tools jq sqlite3
need_loadgen

tap_plan
T_KEEP_DIR=${CLUSTER_KEEP:-}

# every node this test started, to check at the end that none runs
ALL_NODE_PIDS=""

# note_pids : remember the nodes running now
note_pids() { ALL_NODE_PIDS="$ALL_NODE_PIDS ${CL_PID[*]}"; }

# tap_say TEXT : the scenarios' progress as TAP comments
# shellcheck disable=SC2317 # run by say, through SAY_WITH
tap_say() { echo "# [$(date +%T)] $*"; }
SAY_WITH=tap_say

# dup_rows : result rows beyond the first per message id
dup_rows() {
	count "SELECT count(*) - count(DISTINCT message_id) FROM results"
}
# redelivered LABEL : rows of LABEL that took more than one delivery
redelivered() {
	count "SELECT count(*) FROM results WHERE deliveries > 1 AND
		message_id IN (SELECT message_id FROM s.sent WHERE label = '$1')"
}

# cluster_consumer_states : per running node, its view of the stream and
# the consumer: messages, delivered and acknowledged stream sequences,
# pending, waiting pull requests, leader
cluster_consumer_states() {
	local n
	for n in 1 2 3; do
		[ -n "${CL_PID[$n]}" ] || continue
		printf 'n%s %s ' "$n" "$(cluster_mon "$n" \
			'/jsz?consumers=true' | jq -c --arg s "$NATS_STREAM" \
			'.account_details[]?.stream_detail[]? | select(.name == $s)
			| {msgs: .state.messages, last: .state.last_seq,
			   leader: .cluster.leader} + (.consumer_detail[0] |
			{delivered: .delivered.stream_seq,
			 acked: .ack_floor.stream_seq, pending: .num_pending,
			 ack_pending: .num_ack_pending, waiting: .num_waiting,
			 c_leader: .cluster.leader})' 2>/dev/null)"
	done
}

# run_scenario NAME RATE SECONDS : a fresh cluster and stack, a load of
# RATE messages/s for SECONDS, scenario_NAME 2 s in, then the checks
run_scenario() {
	local name=$1 rate=$2 secs=$3 dir=$T_TMP/$1 rc lg_rc t0 acc lost r
	t0=$(date +%s)
	mkdir -p "$dir"
	cluster_start "$dir" || bail "$name: the cluster did not form"
	note_pids
	cluster_stack_env
	RESULTS=$dir/results.db
	export NATS_STREAM=CLUSTER_${name^^} NATS_ACK_WAIT=2s
	export PROCESSOR_WORKERS=4 PROCESSING_DELAY_MS=5
	stack_ports
	stack_roles || bail "$name: the stack did not start"
	load "$name" "$secs" --rate "$rate"
	sleep 2
	"scenario_$name" "$dir"
	rc=$?
	note_pids
	tap_ok "$name: the disruption went as planned" test "$rc" -eq 0
	load_wait
	lg_rc=$?
	tap_ok "$name: diplom-loadgen completed" test "$lg_rc" -eq 0
	tap_ok "$name: the processor drains" wait_drained "$PROC" 60
	wait_until 60 drained "$name"
	acc=$(sent_count "$T_TMP/sent.db" "$name")
	lost=$(missing "$name")
	tap_note "$name: $(jq -c '{sent, accepted, retries, errors}' \
		"$T_TMP/$name.json" 2>/dev/null); accepted in sent.db $acc," \
		"processed $((acc - lost)), lost $lost, duplicate rows" \
		"$(dup_rows), strangers $(strangers), redelivered" \
		"$(redelivered "$name")"
	tap_note "$name: $SCENARIO_FIGURES"
	tap_note "$name: ingest $(watch_503_summary "$dir/watch-503.log")"
	tap_note "$name: the client's longest wait between two accepts:" \
		"$(accept_gap "$T_TMP/sent.db" "$name") s"
	if [ "$lost" != 0 ]; then
		tap_note "$name: the processor's stats: $(curl -s --max-time 2 \
			"$PROC/stats")"
		tap_note "$name: the consumer as each node sees it:" \
			"$(cluster_consumer_states)"
	fi
	tap_ok "$name: messages were accepted" test "$acc" -gt 0
	tap_ok "$name: every accepted message has its row (0 lost)" \
		test "$lost" = 0
	tap_ok "$name: no message has two rows" test "$(dup_rows)" = 0
	tap_ok "$name: no row is a message the client was not given" \
		test "$(strangers)" = 0
	stop_stack
	cluster_stop
	# the next scenario's roles log to the same files
	for r in gateway ingest processor; do
		cp "$T_TMP/$r.log" "$dir/" 2>/dev/null
	done
	tap_note "$name: $(( $(date +%s) - t0 )) s"
}

for s in ${CLUSTER_SCENARIOS:-cluster partition}; do
	case $s in
	cluster) run_scenario cluster 150 22 ;;
	partition)
		if command -v nft >/dev/null && nft list tables >/dev/null 2>&1; then
			run_scenario partition 75 40
		else
			tap_skip "partition" "nft with root is needed to cut a node off"
		fi
		;;
	*) bail "unknown scenario $s" ;;
	esac
done

cluster_cleanup
tap_ok "the nft table is gone" cluster_nft_gone
none_running() {
	local p
	for p in $ALL_NODE_PIDS; do
		pid_running "$p" && return 1
	done
	return 0
}
tap_ok "no nats-server of this test runs" none_running
tap_done
