#!/bin/bash
# Batch ingest: POST /api/v1/ingest/batch answers each item on its own, in
# order, and an item is 200 only once the backend holds it: on a memory
# stack (one whose queue is smaller than the batch too) and on a nats one.
. "$(dirname "$0")/lib.sh"

tap_plan 20

# batch_of N PREFIX : a JSON array of N ingest requests
batch_of() {
	jq -nc --argjson n "$1" --arg p "$2" \
		'[range($n) | {source: "batch", data: "\($p)-\(.)"}]'
}

# post_batch BODY [CONTENT-TYPE] : POST to the gateway's batch endpoint;
# the answer into $T_TMP/batch, the status printed
post_batch() {
	curl -s --max-time 30 -o "$T_TMP/batch" -w '%{http_code}' \
		-H "Content-Type: ${2:-application/json}" --data-binary "$1" \
		"$GW/api/v1/ingest/batch"
}

# ids_of_200 : the ids the last batch's answer has with status 200
ids_of_200() {
	jq -r '.items[] | select(.status == 200) | .message_id' "$T_TMP/batch"
}

# batch_all_200 N PREFIX : a batch of N is answered with N distinct ids
batch_all_200() {
	[ "$(post_batch "$(batch_of "$1" "$2")")" = 200 ] || return 1
	[ "$(jq -r .errors "$T_TMP/batch")" = false ] || return 1
	[ "$(jq '.items | length' "$T_TMP/batch")" -eq "$1" ] || return 1
	ids_of_200 >"$T_TMP/ids"
	[ "$(sort -u "$T_TMP/ids" | wc -l)" -eq "$1" ]
}

# all_readable PREFIX : every id of $T_TMP/ids is processed, through the
# gateway, with the data of its place in the batch
all_readable() {
	local id n=0 body
	while read -r id; do
		body=$(curl -s --max-time 5 "$GW/api/v1/messages/$id")
		[ "$(json_get "$body" success)" = true ] || return 1
		[ "$(json_get "$body" result)" = "PROCESSED_$1-$n" ] || return 1
		n=$((n + 1))
	done <"$T_TMP/ids"
	[ "$n" -gt 0 ]
}

# mixed_statuses : a good, a bad, a good and a non-object item
mixed_statuses() {
	local st
	[ "$(post_batch '[{"source":"a","data":"1"},{"source":7},
		{"source":"c","data":"3"},"x"]')" = 200 ] || return 1
	st=$(jq -c '[.errors, [.items[].status]]' "$T_TMP/batch")
	[ "$st" = '[true,[200,400,200,400]]' ] || return 1
	[ "$(jq -r '.items[1].error' "$T_TMP/batch")" != null ] &&
	[ "$(jq -r '.items[1].message_id' "$T_TMP/batch")" = null ]
}

# ndjson_taken : three lines, three ids, the bad line 400
ndjson_taken() {
	[ "$(post_batch $'{"source":"n","data":"a"}\n{"source":\n{"data":"c"}\n' \
		application/x-ndjson)" = 200 ] &&
	[ "$(jq -c '[.items[].status]' "$T_TMP/batch")" = '[200,400,200]' ]
}

too_many_is_413() {
	[ "$(post_batch "$(batch_of 1001 many)")" = 413 ] &&
	grep -q 'at most 1000' "$T_TMP/batch"
}

too_big_is_413() {
	head -c 1100000 /dev/zero | tr '\0' a >"$T_TMP/big"
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H \
		'Content-Type: application/json' --data-binary "@$T_TMP/big" \
		"$GW/api/v1/ingest/batch")" = 413 ]
}

whole_body_400() {
	[ "$(post_batch '[{"source":"a"}')" = 400 ] &&
	[ "$(post_batch '[]')" = 400 ] &&
	[ "$(post_batch '{"source":"a"}')" = 400 ]
}

# --- memory ----------------------------------------------------------------
start_stack || bail "the memory stack did not start"
tap_ok "memory: a batch of 100 is answered with 100 ids" \
	batch_all_200 100 mem
tap_ok "memory: each of them is processed and readable by id" \
	wait_until 20 all_readable mem
tap_ok "memory: mixed items get their own statuses" mixed_statuses
tap_ok "memory: NDJSON is taken line by line" ndjson_taken
tap_ok "memory: more than MAX_BATCH items is 413" too_many_is_413
tap_ok "memory: over MAX_BODY_BYTES is 413" too_big_is_413
tap_ok "memory: a malformed or empty body is 400" whole_body_400

# keyed_once : an item's idempotency_key gives the same id on a retry of
# the batch, and one row
keyed_once() {
	local body='[{"data":"k","idempotency_key":"batch-key-1"}]' a b
	[ "$(post_batch "$body")" = 200 ] || return 1
	a=$(ids_of_200)
	[ "$(post_batch "$body")" = 200 ] || return 1
	b=$(ids_of_200)
	[ -n "$a" ] && [ "$a" = "$b" ] &&
	wait_until 10 eval "[ \"\$(sql \"\$RESULTS\" \"SELECT count(*) FROM results WHERE message_id = '$a'\")\" = 1 ]"
}
tap_ok "memory: an item's idempotency_key: the same id on a retry, one row" \
	keyed_once

# loadgen_batches : --batch 50 -n 200 is four requests of 50 messages, and
# the summary counts the messages
loadgen_batches() {
	"$DIPLOM_LOADGEN" --url "$GW/api/v1/ingest/batch" --batch 50 -n 200 \
		-c 2 --record "$T_TMP/recorded.db" --json \
		>"$T_TMP/loadgen.json" 2>"$T_TMP/loadgen.err" || return 1
	[ "$(jq -c '[.sent, .requests, .accepted]' "$T_TMP/loadgen.json")" = \
		'[200,4,200]' ] &&
	[ "$(sql "$T_TMP/recorded.db" 'SELECT count(*) FROM sent')" -eq 200 ]
}
# recorded_rows : every id loadgen recorded has its result row
recorded_rows() {
	[ "$(sql "$RESULTS" "ATTACH '$T_TMP/recorded.db' AS r;
		SELECT count(*) FROM r.sent JOIN results USING (message_id)")" \
		-eq 200 ]
}
if [ -x "$DIPLOM_LOADGEN" ]; then
	tap_ok "loadgen --batch 50 records 200 accepted ids" loadgen_batches
	tap_ok "every recorded id has its row" wait_until 20 recorded_rows
else
	tap_skip "loadgen --batch 50 records 200 accepted ids" "no loadgen"
	tap_skip "every recorded id has its row" "no loadgen"
fi
stop_stack

# --- memory, a queue smaller than the batch --------------------------------
RESULTS=$T_TMP/small.db
QUEUE_SIZE=10 PROCESSING_DELAY_MS=200 PROCESSOR_WORKERS=1 start_stack ||
	bail "the small memory stack did not start"
small_queue() {
	[ "$(post_batch "$(batch_of 40 small)")" = 200 ] || return 1
	jq -r '.items[] | "\(.status) \(.message_id // "-")"' "$T_TMP/batch" \
		>"$T_TMP/small"
	[ "$(jq -r .errors "$T_TMP/batch")" = true ]
}
tap_ok "a batch larger than the queue is answered" small_queue
tap_ok "some items are 200" test "$(accepted_in "$T_TMP/small")" -ge 1
tap_ok "the others are 503 queue full" test \
	"$(jq '[.items[] | select(.status == 503 and .error == "Queue is full")]
		| length' "$T_TMP/batch")" -eq $((40 - $(accepted_in "$T_TMP/small")))
tap_ok "every 200 id gets its row" wait_until 20 all_processed "$T_TMP/small"
no_more_rows() {
	[ "$(sql "$RESULTS" 'SELECT count(*) FROM results')" -eq \
		"$(accepted_in "$T_TMP/small")" ]
}
tap_ok "and no item without a 200 has one" no_more_rows
stop_stack

# --- nats --------------------------------------------------------------------
if ! command -v nats-server >/dev/null 2>&1; then
	[ "${DIPLOM_REQUIRE_NATS:-0}" = 1 ] && bail "nats-server not found"
	for _ in $(seq 5); do
		tap_skip "nats" "nats-server not installed"
	done
	tap_done
	exit
fi
RESULTS=$T_TMP/nats.db
start_nats || bail "nats-server did not start"
stack_env
stack_roles || bail "the nats stack did not start"
tap_ok "nats: a batch of 100 is answered with 100 ids" \
	batch_all_200 100 nats
tap_ok "nats: each of them is processed and readable by id" \
	wait_until 20 all_readable nats
tap_ok "nats: mixed items get their own statuses" mixed_statuses
tap_ok "nats: NDJSON is taken line by line" ndjson_taken
tap_ok "nats: more than MAX_BATCH items is 413" too_many_is_413
stop_stack
stop_nats
tap_done
