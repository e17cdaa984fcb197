#!/bin/bash
# Two processors on the one durable consumer split the work: each processes
# some, no message is processed by both, no message twice.
. "$(dirname "$0")/lib.sh"
need_nats

tap_plan 5
start_nats || bail "nats-server did not start"
stack_env
export PROCESSING_DELAY_MS=5 PROCESSOR_WORKERS=2
PROC2_PORT=$(free_port)
PROC2=http://127.0.0.1:$PROC2_PORT
start_role processor processor
RESULTS_DB=$T_TMP/results2.db PROCESSOR_PORT=$PROC2_PORT \
	start_role processor2 processor
start_role ingest ingest
start_role gateway gateway
wait_http "$PROC/health" 10 && wait_http "$PROC2/health" 10 &&
	wait_http "$ING/health" 10 && wait_http "$GW/health" 10 ||
	bail "the stack did not start"

send_n 200 two "$T_TMP/sent"
tap_ok "200 accepted" test "$(accepted_in "$T_TMP/sent")" -eq 200
both_done() {
	[ $(($(processed_of "$T_TMP/sent") + \
		$(processed_of "$T_TMP/sent" "$T_TMP/results2.db"))) -ge 200 ]
}
tap_ok "together they process all 200" wait_until 30 both_done

p1=$(stat_of "$PROC/stats" .pool.ProcessedCount)
p2=$(stat_of "$PROC2/stats" .pool.ProcessedCount)
echo "# processor 1: $p1, processor 2: $p2"
tap_ok "both processors did some of the work" \
	test "$p1" -gt 0 -a "$p2" -gt 0

overlap() {
	sql "$RESULTS" "ATTACH '$T_TMP/results2.db' AS b;
		SELECT count(*) FROM results r
		JOIN b.results s USING (message_id)"
}
tap_ok "no message was processed by both" test "$(overlap)" -eq 0
once() {
	local q='SELECT count(*) FROM results WHERE deliveries <> 1'
	[ "$(sql "$RESULTS" "$q")" = 0 ] &&
		[ "$(sql "$T_TMP/results2.db" "$q")" = 0 ]
}
tap_ok "every message was delivered once" once
tap_done
