#!/bin/bash
# GET /metrics on every role: Prometheus text format 0.0.4 with request
# counts by status, a latency histogram, and the role's own totals.
. "$(dirname "$0")/lib.sh"

tap_plan 8
start_stack || bail "the stack did not start"
for i in 1 2 3 4 5; do
	curl -s -o /dev/null -d "{\"data\":\"m$i\"}" "$GW/api/v1/ingest"
done
curl -s -o /dev/null "$GW/no/such/path"
curl -s -o /dev/null -d '{"data":' "$GW/api/v1/ingest"
wait_until 10 eval '[ "$(curl -s "$PROC/stats" | jq .pool.ProcessedCount)" = 5 ]'

for role in GW ING PROC; do
	curl -s -D "$T_TMP/$role.hdr" -o "$T_TMP/$role.prom" "${!role}/metrics"
done

# metric FILE NAME{LABELS} : its value
metric() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }

content_type() {
	local role
	for role in GW ING PROC; do
		grep -qi '^Content-Type: text/plain; version=0.0.4' \
			"$T_TMP/$role.hdr" || return 1
	done
}
tap_ok "every role answers /metrics as text format 0.0.4" content_type

well_formed() {
	# every sample line: a name, optional labels, one number
	! cat "$T_TMP"/*.prom | grep -v '^#' | grep -v -E \
		'^[a-z_:][a-z0-9_:]*(\{[a-z_]+="[^"]*"\})? [-+0-9.eE]+$|^[a-z_:][a-z0-9_:]*\{le="\+Inf"\} [0-9]+$'
}
tap_ok "every sample line is well formed" well_formed

tap_ok "the gateway counts five 200s" \
	test "$(metric "$T_TMP/GW.prom" 'diplom_http_requests_total{code="200"}')" -ge 5
tap_ok "the gateway counts the 404 and the 400" test \
	"$(metric "$T_TMP/GW.prom" 'diplom_http_requests_total{code="404"}')$(metric "$T_TMP/GW.prom" 'diplom_http_requests_total{code="400"}')" = 11

histogram_consistent() {
	local f=$T_TMP/GW.prom inf count
	inf=$(metric "$f" 'diplom_http_request_duration_seconds_bucket{le="+Inf"}')
	count=$(metric "$f" diplom_http_request_duration_seconds_count)
	[ "$inf" = "$count" ] && [ "$count" -ge 7 ] &&
		grep '_bucket{' "$f" | awk '{ if ($2 < prev) exit 1; prev = $2 }'
}
tap_ok "the latency histogram is cumulative and counts every request" histogram_consistent

tap_ok "ingest counts five accepted messages" \
	test "$(metric "$T_TMP/ING.prom" diplom_ingest_accepted_total)" = 5
tap_ok "the processor counts five processed, none failed" test \
	"$(metric "$T_TMP/PROC.prom" diplom_messages_processed_total)/$(metric "$T_TMP/PROC.prom" diplom_messages_failed_total)" = 5/0
tap_ok "the processor reports its queue depth" \
	test "$(metric "$T_TMP/PROC.prom" diplom_queue_depth)" = 0
tap_done
