#!/bin/bash
# A poison message (not a DataMessage) published straight to the subject is
# stored as a failed result, terminated, and does not stop the processor.
. "$(dirname "$0")/lib.sh"
need_nats

tap_plan 5
start_nats || bail "nats-server did not start"
stack_env
stack_roles || bail "the stack did not start"

tap_ok "a raw poison message is published" \
	nats_pub_raw "${NATS_SUBJECT_PREFIX:-diplom}.messages" poison-1 \
	'this is {not json'

failed_row() {
	local q="SELECT success FROM results WHERE message_id = 'poison-1'"
	[ "$(sql "$RESULTS" "$q")" = 0 ]
}
tap_ok "it is stored as a failed result" wait_until 10 failed_row
errors() { [ "$(stat_of "$PROC/stats" .pool.ErrorCount)" -ge 1 ]; }
tap_ok "it counts as an error" wait_until 5 errors

send_n 5 after "$T_TMP/sent"
tap_ok "the processor goes on processing" \
	wait_until 10 all_processed "$T_TMP/sent"
tap_ok "the poison message is not redelivered forever" \
	wait_until 10 backlog_empty
tap_done
