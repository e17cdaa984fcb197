#!/bin/bash
# crash_mid_stream_loses_nothing: SIGKILL the processor while a few hundred
# messages stream in, restart it; every accepted id gets exactly one row.
. "$(dirname "$0")/lib.sh"
need_nats

tap_plan 6
start_nats || bail "nats-server did not start"
stack_env
export NATS_ACK_WAIT=2s PROCESSING_DELAY_MS=2 PROCESSOR_WORKERS=4
stack_roles || bail "the stack did not start"

: >"$T_TMP/sent"
send_n 300 crash "$T_TMP/sent" &
sender=$!
sent_100() { [ "$(wc -l <"$T_TMP/sent")" -ge 100 ]; }
wait_until 30 sent_100
stop_pid "$processor_PID" KILL >/dev/null
killed_at=$(wc -l <"$T_TMP/sent")
echo "# processor killed after $killed_at sends"
sleep 0.5
start_role processor processor
tap_ok "the restarted processor is healthy" wait_http "$PROC/health" 10
wait "$sender"
midway() { [ "$killed_at" -lt 300 ]; }
tap_ok "the processor was killed mid-stream" midway

tap_ok "all 300 were accepted (ingest does not need the processor)" \
	test "$(accepted_in "$T_TMP/sent")" -eq 300
tap_ok "every accepted id has a result row" \
	wait_until 30 all_processed "$T_TMP/sent"
tap_ok "no extra rows" test "$(sql "$RESULTS" 'SELECT count(*) FROM results')" \
	-eq "$(accepted_in "$T_TMP/sent")"
tap_ok "every result is a success" \
	test "$(sql "$RESULTS" \
		'SELECT count(*) FROM results WHERE success = 0')" -eq 0
tap_done
