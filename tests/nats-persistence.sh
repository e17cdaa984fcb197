#!/bin/bash
# Persistence on NATS: with the processor stopped, ingest keeps accepting
# (the stream holds the messages); a processor started later processes all.
. "$(dirname "$0")/lib.sh"
need_nats

tap_plan 5
start_nats || bail "nats-server did not start"
stack_env
start_role ingest ingest
start_role gateway gateway
wait_http "$ING/health" 10 && wait_http "$GW/health" 10 ||
	bail "ingest and gateway did not start"

send_n 50 persist "$T_TMP/sent"
tap_ok "50 messages accepted while no processor runs" \
	test "$(accepted_in "$T_TMP/sent")" -eq 50
tap_ok "nothing was refused" test "$(wc -l <"$T_TMP/sent")" -eq 50

start_role processor processor
tap_ok "the processor starts healthy" wait_http "$PROC/health" 10
tap_ok "every accepted message is processed" \
	wait_until 20 all_processed "$T_TMP/sent"

tap_ok "the backlog drains to zero" wait_until 10 backlog_empty
tap_done
