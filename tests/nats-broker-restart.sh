#!/bin/bash
# The broker crashes (SIGKILL) and comes back on the same store and port:
# while it is down ingest answers 503 fast and /health says 503; afterwards
# the same daemons recover by themselves and nothing accepted is lost.
. "$(dirname "$0")/lib.sh"
need_nats

tap_plan 8
start_nats || bail "nats-server did not start"
stack_env
stack_roles || bail "the stack did not start"

send_n 20 before "$T_TMP/sent"
tap_ok "20 accepted before the crash" \
	test "$(accepted_in "$T_TMP/sent")" -eq 20
wait_until 10 all_processed "$T_TMP/sent"

stop_pid "$NATS_PID" KILL >/dev/null
refused_fast() {
	local t code
	t=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 10 \
		-H 'Content-Type: application/json' \
		-d '{"source":"t","data":"down","metadata":{}}' \
		"$GW/api/v1/ingest")
	code=${t%% *}
	echo "# while down: $t"
	[ "$code" = 503 ] && awk -v s="${t#* }" 'BEGIN { exit !(s < 3) }'
}
tap_ok "ingest answers 503 in under 3 s while the broker is down" refused_fast
tap_ok "ingest /health is 503" wait_http "$ING/health" 5 503
tap_ok "processor /health is 503" wait_http "$PROC/health" 5 503

start_nats || bail "nats-server did not restart"
tap_ok "ingest recovers without a restart" wait_http "$ING/health" 15
tap_ok "processor recovers without a restart" wait_http "$PROC/health" 15
send_n 20 after "$T_TMP/sent"
tap_ok "40 accepted in all" test "$(accepted_in "$T_TMP/sent")" -eq 40
tap_ok "every accepted message is processed" \
	wait_until 30 all_processed "$T_TMP/sent"
tap_done
