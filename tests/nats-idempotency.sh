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

# ingest SIGKILLed mid-run, then the processor restarted, with keys
load_through kill "ingest killed" kill_ingest
load_through restart "the processor restarted" restart_processor

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
