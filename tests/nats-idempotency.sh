#!/bin/bash
# Client retries without duplicates on NATS. The broker stalls (SIGSTOP)
# under a steady load whose client retries every 503: a publish the stream
# stored but whose PubAck came too late is retried with the same
# Idempotency-Key, so the same Nats-Msg-Id, and JetStream drops the copy.
# Then ingest is SIGKILLed mid-run and started again. Each time every
# accepted id has its row and no row is a message the client never got an
# id for. Without keys the stall's duplicates are counted, for comparison.
. "$(dirname "$0")/lib.sh"
need_nats
need_loadgen

tap_plan 8
start_nats || bail "nats-server did not start"
stack_env
stack_roles || bail "the stack did not start"

stall() {
	sleep 3
	kill -STOP "$NATS_PID"
	sleep 4
	kill -CONT "$NATS_PID"
}

# the stall, with keys
load stall 10
stall
load_wait
wait_until 30 drained stall
tap_note "stall with keys: $(jq -c '{sent, accepted, retries, rejected_by_status}' "$T_TMP/stall.json"), rows $(count 'SELECT count(*) FROM results'), strangers $(strangers)"
tap_ok "with keys, every message accepted in the stall has its row" \
	test "$(missing stall)" = 0
tap_ok "and no row is a duplicate the client cannot tell apart" \
	test "$(strangers)" = 0

# ingest SIGKILLed mid-run, with keys
load kill 8
sleep 3
stop_pid "$ingest_PID" KILL
start_role ingest ingest
wait_health "$ING" 10 || bail "ingest did not come back"
load_wait
wait_until 30 drained kill
tap_note "ingest killed, with keys: $(jq -c '{sent, accepted, retries, errors}' "$T_TMP/kill.json"), strangers $(strangers)"
tap_ok "with ingest killed, every accepted message has its row" \
	test "$(missing kill)" = 0
tap_ok "and none is a duplicate" test "$(strangers)" = 0

# the processor restarted mid-run, with keys
load restart 6
sleep 2
stop_pid "$processor_PID"
start_role processor processor
wait_health "$PROC" 10 || bail "the processor did not come back"
load_wait
wait_until 30 drained restart
tap_ok "with the processor restarted, every accepted message has its row" \
	test "$(missing restart)" = 0
tap_ok "and none is a duplicate" test "$(strangers)" = 0

# the same stall without keys: what the keys save
before=$(strangers)
load nokeys 10 --no-idempotency
stall
load_wait
wait_until 30 drained nokeys
tap_note "stall without keys: $(jq -c '{sent, accepted, retries}' "$T_TMP/nokeys.json"), duplicates $(( $(strangers) - before ))"
tap_ok "without keys, every accepted message has its row too" \
	test "$(missing nokeys)" = 0
tap_ok "the stack is healthy" wait_health "$GW" 5
tap_done
