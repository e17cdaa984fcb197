#!/bin/bash
# SIGTERM with a backlog: the processor stops taking messages, processes all
# it accepted, and exits 0.
. "$(dirname "$0")/lib.sh"

tap_plan 5
QUEUE_SIZE=1000 PROCESSOR_WORKERS=1 PROCESSING_DELAY_MS=40 start_stack \
	|| bail "the stack did not start"

export GW
seq 200 | xargs -P 16 -I{} curl -s -o /dev/null -w '%{http_code}\n' \
	-H 'Content-Type: application/json' \
	-d '{"source":"drain","data":"m{}"}' "$GW/api/v1/ingest" >"$T_TMP/codes"
accepted=$(grep -c '^200$' "$T_TMP/codes")
backlog=$(curl -s "$PROC/stats" | jq .queue.CurrentSize)
echo "# accepted $accepted, backlog at SIGTERM $backlog"

tap_ok "all 200 messages accepted" test "$accepted" -eq 200
tap_ok "there is a backlog when SIGTERM arrives" test "$backlog" -gt 0

kill -TERM "$processor_PID"
sleep 0.1
refused_while_draining() {
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' \
		-H 'Content-Type: application/json' -d '{"data":"late"}' \
		"$PROC/enqueue")
	# 503 while draining, or 000 once it has stopped listening
	[ "$code" = 503 ] || [ "$code" = 000 ]
}
tap_ok "a draining processor refuses new messages" refused_while_draining

stop_pid "$processor_PID" TERM
tap_ok "the processor exits 0" test "$STOP_RC" -eq 0
tap_ok "nothing accepted is lost" \
	test "$(sql "$RESULTS" 'SELECT count(*) FROM results')" -eq 200
tap_done
