#!/bin/bash
# diplomctl against a nats stack: a message given up for real
# (NATS_MAX_DELIVER=1, its processor SIGKILLed while it holds it) keeps its
# bytes, is listed by failed, and its replay (a Nats-Msg-Id of its own,
# inside the stream's duplicate window of the first publish) succeeds and
# replaces the row; status with the broker down and back; drain while the
# processor is stopped and after its start.
. "$(dirname "$0")/lib.sh"
need_nats
need_tools jq sqlite3 curl

need_ctl
tap_plan

start_nats || bail "nats-server did not start"
stack_env
# a message is given up on its second delivery; a dead processor's
# message comes back after 2 s
export NATS_MAX_DELIVER=1 NATS_ACK_WAIT=2s
stack_roles --processing-delay-ms=60000 || bail "the stack did not start"

tap_ok "status on a nats stack exits 0 and names the backend" \
	eval 'exits 0 status --json --interval 0 &&
	    jout ".healthy and .backend == \"nats\" and .backlog == 0"'

# --- a give-up, kept, listed, replayed ---------------------------------------------

read -r code id <<<"$(ingest_one doomed)"
[ "$code" = 200 ] || bail "the message was not accepted ($code)"
held() { [ "$(stat_of "$PROC/stats" .queue.CurrentSize)" = 1 ]; }
wait_until 10 held || bail "the processor does not hold the message"
sleep 1
stop_pid "$processor_PID" KILL
start_role processor processor --processing-delay-ms=0
wait_health "$PROC" 10 || bail "the processor did not start again"
given_up() {
	quietly 0 failed --json &&
		jout ".failed | any(.message_id == \"$id\" and .kept and
		    (.error | startswith(\"given up\")))"
}
tap_ok "a message delivered twice without a result is given up, kept" \
	wait_until 20 given_up
tap_ok "show of it exits 1 and says it failed" \
	eval 'exits 1 show "$id" && out_has "^state *failed"'
tap_ok "its row keeps the message bytes as they were published" \
	eval '[ "$(sql "$RESULTS" "SELECT json_extract(CAST(message AS TEXT),
	    \"\$.id\") FROM results WHERE message_id = \"$id\"")" = "$id" ]'
tap_ok "replay of it exits 0" exits 0 replay "$id"
processed() { quietly 0 show --json "$id"; }
tap_ok "the replay is processed: the stream did not drop it as a duplicate" \
	wait_until 15 processed
tap_ok "its success replaced the failed row" \
	eval 'jout ".state == \"processed\" and .result == \"PROCESSED_doomed\"
	    and .deliveries == 2" &&
	    [ "$(sql "$RESULTS" "SELECT count(*), sum(message IS NULL)
		FROM results WHERE message_id = \"$id\"")" = "1|1" ]'
tap_ok "failed no longer lists it" \
	eval 'exits 0 failed --json && jout "(.failed | length) == 0"'
tap_ok "a second replay is refused: it did not fail (exit 1)" \
	eval 'exits 1 replay "$id" && out_has "did not fail"'

# --- status while the broker is down -----------------------------------------------

stop_nats
down() { quietly 1 status --interval 0; }
tap_ok "status with the broker down exits 1" wait_until 10 down
tap_ok "and gives the processor's reason" \
	eval 'out_has "^processor .*UNHEALTHY: .*NATS"'
start_nats || bail "nats-server did not start again"
up() { quietly 0 status --interval 0; }
tap_ok "status exits 0 once the broker is back" wait_until 20 up

# --- drain with the processor stopped ------------------------------------------------

stop_pid "$processor_PID"
: >"$T_TMP/ids"
for i in $(seq 20); do
	ingest_one "queued$i" | awk '$1 == 200 { print $2 }' >>"$T_TMP/ids"
done
tap_ok "ingest accepts 20 messages while the processor is stopped" \
	test "$(wc -l <"$T_TMP/ids")" = 20
tap_ok "drain cannot finish without a processor (exit 1)" \
	exits 1 drain --timeout 1s
start_role processor processor --processing-delay-ms=0
wait_health "$PROC" 10 || bail "the processor did not start again"
tap_ok "drain finishes once the processor is back (exit 0)" \
	eval 'exits 0 drain --json && jout ".drained and .backlog == 0"'
all_stored() {
	local id
	while read -r id; do
		[ "$(sql "$RESULTS" "SELECT success FROM results
		    WHERE message_id = '$id'")" = 1 ] || return 1
	done <"$T_TMP/ids"
}
tap_ok "every message accepted before the drain is processed" all_stored
tap_ok "a message meanwhile is refused (503)" \
	eval '[ "$(ingest_one refused | cut -d" " -f1)" = 503 ]'
tap_ok "resume, and messages are accepted again" \
	eval 'exits 0 resume && [ "$(ingest_one again | cut -d" " -f1)" = 200 ]'

tap_done
