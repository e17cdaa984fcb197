#!/bin/bash
# The broker starts after the daemons: /health is 503 and ingest refuses
# until it appears, then everything turns healthy and messages flow.
. "$(dirname "$0")/lib.sh"
need_nats

tap_plan 6
NATS_PORT=$(free_port)
export NATS_URL=nats://127.0.0.1:$NATS_PORT
stack_env
start_role processor processor
start_role ingest ingest
start_role gateway gateway
wait_http "$GW/health" 10 || bail "the gateway did not start"

tap_ok "ingest /health is 503 without a broker" \
	wait_http "$ING/health" 5 503
tap_ok "processor /health is 503 without a broker" \
	wait_http "$PROC/health" 5 503
tap_ok "ingest refuses with 503" \
	test "$(ingest_one early | cut -d' ' -f1)" = 503

start_nats || bail "nats-server did not start"
tap_ok "ingest turns healthy" wait_http "$ING/health" 15
tap_ok "processor turns healthy" wait_http "$PROC/health" 15
send_n 10 late "$T_TMP/sent"
flows() {
	[ "$(accepted_in "$T_TMP/sent")" -eq 10 ] &&
		wait_until 15 all_processed "$T_TMP/sent"
}
tap_ok "messages flow once the broker is up" flows
tap_done
