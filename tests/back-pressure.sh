#!/bin/bash
# Back-pressure on the memory backend: a tiny queue and a slow worker turn
# the excess into 503s, and every accepted message is still processed.
. "$(dirname "$0")/lib.sh"

tap_plan 5
QUEUE_SIZE=5 PROCESSOR_WORKERS=1 PROCESSING_DELAY_MS=50 start_stack \
	|| bail "the stack did not start"

# post_numbered N : one message, status to stdout, body and headers kept
post_numbered() {
	curl -s -o "$T_TMP/r.$1" -D "$T_TMP/h.$1" -w '%{http_code}\n' \
		-H 'Content-Type: application/json' \
		-d "{\"source\":\"bp\",\"data\":\"m$1\"}" "$GW/api/v1/ingest"
}
send_burst() {
	export -f post_numbered
	export T_TMP GW
	seq 60 | xargs -P 30 -I{} bash -c 'post_numbered {}' >"$T_TMP/codes"
}
send_burst
accepted=$(grep -c '^200$' "$T_TMP/codes")
refused=$(grep -c '^503$' "$T_TMP/codes")
echo "# accepted $accepted, refused $refused"

tap_ok "every request is answered 200 or 503" \
	test $((accepted + refused)) -eq 60
tap_ok "a full queue refuses some with 503" test "$refused" -gt 0

refusals_explain() {
	local f
	for f in "$T_TMP"/r.*; do
		grep -q '"error"' "$f" || continue
		grep -q 'Queue is full' "$f" || return 1
		grep -qi '^Retry-After:' "${f/r./h.}" || return 1
	done
}
tap_ok "503s say the queue is full and carry Retry-After" refusals_explain

all_stored() {
	[ "$(sql "$RESULTS" 'SELECT count(*) FROM results')" = "$accepted" ]
}
tap_ok "every accepted message is processed" wait_until 30 all_stored

ids_match() {
	local f id
	for f in "$T_TMP"/r.*; do
		id=$(jq -r '.message_id // empty' "$f")
		[ -z "$id" ] && continue
		[ "$(sql "$RESULTS" "SELECT count(*) FROM results WHERE message_id='$id'")" = 1 ] || return 1
	done
}
tap_ok "each accepted id has exactly one result row" ids_match
tap_done
