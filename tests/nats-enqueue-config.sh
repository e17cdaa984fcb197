#!/bin/bash
# In nats mode the processor's /enqueue still works (it publishes like
# ingest), and a stream or consumer that exists with other settings is
# used as it is, with a clear warning, not overwritten.
. "$(dirname "$0")/lib.sh"
need_nats

tap_plan 6
start_nats || bail "nats-server did not start"
stack_env
start_role processor processor
wait_http "$PROC/health" 10 || bail "the processor did not start"

enqueue_processed() {
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
		-d '{"id":"enq-1","timestamp":1732700000,"source":"t","payload":"aGk="}' \
		"$PROC/enqueue")
	[ "$code" = 202 ] &&
		wait_until 10 eval "curl -sf '$PROC/results/enq-1' >'$T_TMP/r'" &&
		[ "$(jq -r .result "$T_TMP/r")" = PROCESSED_hi ]
}
tap_ok "/enqueue in nats mode is 202 and the message is processed" enqueue_processed
tap_ok "the publish counts in TotalEnqueued" \
	test "$(stat_of "$PROC/stats" .queue.TotalEnqueued)" -ge 1
tap_ok "a bad message at /enqueue is still 400" test "$(curl -s -o /dev/null \
	-w '%{http_code}' -d '{"id":1}' "$PROC/enqueue")" = 400

stop_pid "$processor_PID" TERM
NATS_MAX_MSGS=500 NATS_ACK_WAIT=47s start_role processor2 processor
wait_http "$PROC/health" 10
tap_ok "a processor with other limits starts on the existing stream" \
	kill -0 "$processor2_PID"
warned() {
	grep -q 'warn.*stream .*different.*max_msgs' "$T_TMP/processor2.log" &&
		grep -q 'warn.*consumer .*different.*ack_wait' "$T_TMP/processor2.log"
}
tap_ok "it warns about the stream's and the consumer's differing settings" warned
still_flows() {
	curl -s -o /dev/null -H 'Content-Type: application/json' \
		-d '{"id":"enq-2","payload":"aGk="}' "$PROC/enqueue"
	wait_until 10 curl -sf -o /dev/null "$PROC/results/enq-2"
}
tap_ok "messages still flow through the existing stream" still_flows
tap_done
