#!/bin/bash
# A key reused with another body on the memory backend is refused with 422,
# while the first message is queued and after it is processed; the same body
# again, spelled otherwise, is a 200 with the same id. Batch items get the
# same per-item answer. With two processors behind one ingest, a keyed
# message goes to the processor its id hashes to, so the 422 holds there
# too, for singles and batch items alike.
. "$(dirname "$0")/lib.sh"

tap_plan 12
stack_ports
# one slow worker, so that a message stays queued a while
export PROCESSOR_WORKERS=1 PROCESSING_DELAY_MS=300
stack_roles || bail "the stack did not start"

# post URL KEY BODY : "CODE ID-OR-ERROR" of a POST with Idempotency-Key
post() {
	local out code
	out=$(curl -s --max-time 10 -w '\n%{http_code}' -H "Idempotency-Key: $2" \
		-H 'Content-Type: application/json' -d "$3" "$1") || true
	code=${out##*$'\n'}
	echo "$code $(printf '%s' "${out%$'\n'*}" | jq -r '.message_id // .error' 2>/dev/null)"
}
A='{"source":"shop","data":"A","metadata":{"x":"1","y":"2"}}'
A2='{ "metadata": {"y":"2","x":"1"},  "data" : "A", "source":"shop"}'
B='{"source":"shop","data":"B","metadata":{"x":"1","y":"2"}}'

a=$(post "$GW/api/v1/ingest" order-1 "$A")
id=${a#* }
tap_ok "the first body is accepted" test "${a%% *}" = 200
b=$(post "$GW/api/v1/ingest" order-1 "$B")
tap_note "another body while the first is queued: $b"
tap_ok "another body under the key while the first is queued: 422" \
	test "$b" = "422 Idempotency-Key reused with a different request body"
tap_ok "the same body spelled otherwise: 200, the same id" \
	test "$(post "$GW/api/v1/ingest" order-1 "$A2")" = "200 $id"
done_row() { [ "$(sql "$RESULTS" "SELECT count(*) FROM results WHERE message_id = '$id'")" = 1 ]; }
tap_ok "the message is processed" wait_until 10 done_row
tap_ok "after it is processed, another body is still 422" \
	test "$(post "$ING/ingest" order-1 "$B" | cut -d' ' -f1)" = 422
tap_ok "and the same body 200 with the same id" \
	test "$(post "$ING/ingest" order-1 "$A")" = "200 $id"
tap_ok "its result is the first body's, delivered once" test \
	"$(sql "$RESULTS" "SELECT CAST(result AS TEXT) || ' ' || deliveries FROM results WHERE message_id = '$id'")" = "PROCESSED_A 1"

out=$(curl -s --max-time 10 -H 'Content-Type: application/json' -d \
	"[{\"idempotency_key\":\"order-1\",\"source\":\"shop\",\"data\":\"B\",\"metadata\":{\"x\":\"1\",\"y\":\"2\"}},
	  {\"idempotency_key\":\"order-1\",\"source\":\"shop\",\"data\":\"A\",\"metadata\":{\"x\":\"1\",\"y\":\"2\"}},
	  {\"idempotency_key\":\"order-2\",\"data\":\"C\"}, {\"data\":\"D\"}]" \
	"$GW/api/v1/ingest/batch")
tap_note "batch: $out"
tap_ok "batch items: another body under a key is 422, the rest 200" \
	test "$(jq -c '[.items[].status]' <<<"$out")" = '[422,200,200,200]' -a \
	"$(jq -r '.items[1].message_id' <<<"$out")" = "$id"

# two processors behind one ingest
stop_stack
P2_PORT=$(free_port)
export PROCESSOR_URL="$PROC,http://127.0.0.1:$P2_PORT" PROCESSING_DELAY_MS=0
PROCESSOR_PORT=$P2_PORT RESULTS_DB=$T_TMP/results2.db start_role p2 processor
stack_roles || bail "the stack did not restart"
wait_health "http://127.0.0.1:$P2_PORT" 10 || bail "the second processor did not start"
two_procs() {
	local i
	for i in $(seq 12); do
		[ "$(post "$ING/ingest" "two-$i" "{\"data\":\"first-$i\"}" | cut -d' ' -f1)" = 200 ] || return 1
	done
	for i in $(seq 12); do
		[ "$(post "$ING/ingest" "two-$i" "{\"data\":\"other-$i\"}" | cut -d' ' -f1)" = 422 ] ||
			{ tap_note "two-$i was not refused"; return 1; }
	done
}
tap_ok "two processors: another body under each of 12 keys is 422" two_procs
e1=$(stat_of "$PROC/stats" .queue.TotalEnqueued)
e2=$(stat_of "http://127.0.0.1:$P2_PORT/stats" .queue.TotalEnqueued)
tap_note "keyed messages queued: $e1 and $e2"
tap_ok "the keys are spread over both processors, each queued once" \
	test "$e1" -gt 0 -a "$e2" -gt 0 -a $((e1 + e2)) = 12
batch_two() {
	local items='' i
	for i in $(seq 12); do
		items="$items${items:+,}{\"idempotency_key\":\"two-$i\",\"data\":\"other-$i\"},{\"idempotency_key\":\"two-$i\",\"data\":\"first-$i\"}"
	done
	out=$(curl -s --max-time 10 -H 'Content-Type: application/json' -d "[$items]" "$ING/ingest/batch")
	test "$(jq -c '[.items[].status] | group_by(.) | map([.[0], length])' <<<"$out")" = '[[200,12],[422,12]]' &&
		test "$(jq -c '[.items | to_entries[] | select(.key % 2 == 0) | .value.status] | unique' <<<"$out")" = '[422]'
}
tap_ok "two processors: in a batch, each other body is 422, each same body 200" batch_two
tap_ok "the stack is healthy" wait_health "$GW" 5
tap_done
