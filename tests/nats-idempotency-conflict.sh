#!/bin/bash
# A key reused with another body on NATS is refused with 422, also when the
# two requests reach two different ingests of one deployment, also when
# they come at the same moment (exactly one 200), and after the broker
# restarts. The same body again is a 200 with the same id. A batch item
# reusing a key gets the same 422 in the batch's answer.
. "$(dirname "$0")/lib.sh"
need_nats

tap_plan 11
start_nats || bail "nats-server did not start"
stack_env
ING2_PORT=$(free_port)
ING2=http://127.0.0.1:$ING2_PORT
start_role processor processor
wait_health "$PROC" 10 || bail "the processor did not start"
start_role ingest ingest
INGEST_PORT=$ING2_PORT start_role ingest2 ingest
wait_health "$ING" 10 && wait_health "$ING2" 10 || bail "ingest did not start"

# post URL KEY BODY : "CODE ID-OR-ERROR" of POST URL/ingest
post() {
	local out code
	out=$(curl -s --max-time 10 -w '\n%{http_code}' -H "Idempotency-Key: $2" \
		-H 'Content-Type: application/json' -d "$3" "$1/ingest") || true
	code=${out##*$'\n'}
	echo "$code $(printf '%s' "${out%$'\n'*}" | jq -r '.message_id // .error' 2>/dev/null)"
}

a=$(post "$ING" order-1 '{"source":"shop","data":"A","metadata":{"x":"1","y":"2"}}')
id=${a#* }
tap_note "first: $a"
tap_ok "the first body is accepted" test "${a%% *}" = 200
b=$(post "$ING2" order-1 '{"source":"shop","data":"B","metadata":{"x":"1","y":"2"}}')
tap_note "another body at the other ingest: $b"
tap_ok "another body under the key, at the other ingest, is 422" \
	test "${b%% *}" = 422
tap_ok "and the error says why" grep -q "Idempotency-Key" <<<"$b"
c=$(post "$ING2" order-1 '{ "metadata" : {"y":"2", "x":"1"}, "data":"A",  "source":"shop" }')
tap_ok "the same body, spelled otherwise, at the other ingest: 200, same id" \
	test "$c" = "200 $id"

# the same key with two bodies at once, at the two ingests
race() {
	local i pids=()
	for i in $(seq 10); do
		post "$ING" "race-$i" "{\"data\":\"one-$i\"}" >"$T_TMP/race1.$i" &
		pids+=($!)
		post "$ING2" "race-$i" "{\"data\":\"two-$i\"}" >"$T_TMP/race2.$i" &
		pids+=($!)
	done
	wait "${pids[@]}"
}
race
one_each() {
	local i codes
	for i in $(seq 10); do
		codes=$(cat "$T_TMP/race1.$i" "$T_TMP/race2.$i" | cut -d' ' -f1 | sort | tr '\n' ' ')
		[ "$codes" = "200 422 " ] || { tap_note "race-$i: $codes"; return 1; }
	done
}
tap_ok "two bodies at once under one key, ten times: one 200 and one 422 each" one_each

one_row() { [ "$(sql "$RESULTS" "SELECT count(*) FROM results WHERE message_id = '$id'")" = 1 ]; }
tap_ok "the key's message is processed once" wait_until 10 one_row
tap_ok "its result is the first body's" test \
	"$(sql "$RESULTS" "SELECT CAST(result AS TEXT) FROM results WHERE message_id = '$id'")" = PROCESSED_A
tap_ok "its row keeps a fingerprint" test \
	"$(sql "$RESULTS" "SELECT length(fingerprint) FROM results WHERE message_id = '$id'")" = 64

# batch items
out=$(curl -s --max-time 10 -H 'Content-Type: application/json' -d \
	'[{"idempotency_key":"order-1","source":"shop","data":"B","metadata":{"x":"1","y":"2"}},
	  {"idempotency_key":"order-1","source":"shop","data":"A","metadata":{"x":"1","y":"2"}},
	  {"idempotency_key":"order-9","data":"C"}]' "$ING2/ingest/batch")
tap_note "batch: $out"
tap_ok "a batch item reusing a key with another body is 422, the others 200" \
	test "$(jq -c '[.items[].status]' <<<"$out")" = '[422,200,200]' -a \
	"$(jq -r '.items[1].message_id' <<<"$out")" = "$id"

# the broker restarts: the key stays bound
stop_nats
start_nats || bail "nats-server did not restart"
after_restart() { [ "$(post "$ING" order-1 '{"source":"shop","data":"B","metadata":{"x":"1","y":"2"}}' | cut -d' ' -f1)" = 422 ]; }
tap_ok "after a broker restart, another body is still 422" wait_until 20 after_restart
tap_ok "and the same body still 200 with the same id" test \
	"$(post "$ING2" order-1 '{"source":"shop","data":"A","metadata":{"x":"1","y":"2"}}')" = "200 $id"
tap_done
