#!/bin/bash
# The seed's flow: ten messages through the gateway are all processed, and
# each is found by its id.
. "$(dirname "$0")/lib.sh"

tap_plan 6
start_stack || bail "the stack did not start"

ids=""
all_accepted() {
	local i out code
	for i in $(seq 10); do
		out=$(post_json "$GW/api/v1/ingest" \
			"{\"source\":\"seed\",\"data\":\"message $i\",\"metadata\":{\"n\":\"$i\"}}")
		code=${out%% *}
		[ "$code" = 200 ] || { echo "# got $out" >&2; return 1; }
		[ "$(json_get "${out#* }" status)" = accepted ] || return 1
		ids="$ids $(json_get "${out#* }" message_id)"
	done
}
tap_ok "ten messages through the gateway are accepted" all_accepted

processed_10() {
	[ "$(curl -s "$PROC/stats" | jq .pool.ProcessedCount)" = 10 ]
}
tap_ok "the processor counts ten processed" wait_until 10 processed_10

lookups_work() {
	local id n=0 body
	for id in $ids; do
		n=$((n + 1))
		body=$(curl -s -w ' %{http_code}' "$GW/api/v1/messages/$id")
		[ "${body##* }" = 200 ] || return 1
		body=${body% *}
		[ "$(json_get "$body" result)" = "PROCESSED_message $n" ] || return 1
		[ "$(json_get "$body" success)" = true ] || return 1
		[ "$(json_get "$body" deliveries)" = 1 ] || return 1
	done
}
tap_ok "every message is found by id with its result" lookups_work

unknown_is_404() {
	[ "$(curl -s -o /dev/null -w '%{http_code}' \
		"$GW/api/v1/messages/no-such-id")" = 404 ]
}
tap_ok "an unknown id is 404" unknown_is_404

status_healthy() {
	local s
	s=$(curl -s "$GW/api/v1/status")
	[ "$(json_get "$s" ingest.healthy)" = true ] &&
	[ "$(json_get "$s" processor.healthy)" = true ] &&
	[ "$(json_get "$s" ingest.stats.TotalSent)" = 10 ] &&
	[ "$(json_get "$s" processor.stats.queue.TotalEnqueued)" = 10 ]
}
tap_ok "gateway status shows both services healthy with their stats" status_healthy

rows_stored() {
	[ "$(sql "$RESULTS" 'SELECT count(*), sum(deliveries) FROM results')" = "10|10" ]
}
tap_ok "ten rows in the result store, one delivery each" rows_stored
tap_done
