#!/bin/bash
# GET /metrics on every role: Prometheus text format 0.0.4 that promtool
# accepts, with request counts by status, the roles' totals, and histograms
# that move with the traffic: after N messages the processing histogram
# counts N. With nats-server, the same for a nats stack: ingest times its
# publishes, the processor reports the consumer's ack-pending.
. "$(dirname "$0")/lib.sh"

tap_plan
N=5
start_stack || bail "the stack did not start"
for i in $(seq $N); do
	curl -s -o /dev/null -d "{\"data\":\"m$i\"}" "$GW/api/v1/ingest"
done
curl -s -o /dev/null "$GW/no/such/path"
curl -s -o /dev/null -d '{"data":' "$GW/api/v1/ingest"
wait_until 10 eval '[ "$(curl -s "$PROC/stats" | jq .pool.ProcessedCount)" = $N ]'

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
		'^[a-z_:][a-z0-9_:]*(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [-+0-9.eE]+$'
}
tap_ok "every sample line is well formed" well_formed

# promtool_ok FILE... : promtool check metrics finds nothing to say
promtool_ok() {
	local f out
	for f in "$@"; do
		out=$(promtool check metrics <"$f" 2>&1) || {
			tap_note "$f: $out"
			return 1
		}
		[ -z "$out" ] || { tap_note "$f: $out"; return 1; }
	done
}
HAVE_PROMTOOL=''
required_tools promtool && HAVE_PROMTOOL=1
if [ -n "$HAVE_PROMTOOL" ]; then
	tap_ok "promtool check metrics accepts every role's /metrics" \
		promtool_ok "$T_TMP/GW.prom" "$T_TMP/ING.prom" "$T_TMP/PROC.prom"
else
	tap_skip "promtool check metrics accepts every role's /metrics" \
		"promtool (prometheus) not installed"
fi

tap_ok "the gateway counts five 200s" \
	test "$(metric "$T_TMP/GW.prom" 'diplom_http_requests_total{code="200"}')" -ge 5
tap_ok "the gateway counts the 404 and the 400" test \
	"$(metric "$T_TMP/GW.prom" 'diplom_http_requests_total{code="404"}')$(metric "$T_TMP/GW.prom" 'diplom_http_requests_total{code="400"}')" = 11

# histogram_consistent FILE NAME [MIN] : buckets cumulative, +Inf equal to
# _count, and _count at least MIN
histogram_consistent() {
	local f=$1 h=$2 inf count
	inf=$(metric "$f" "${h}_bucket{le=\"+Inf\"}")
	count=$(metric "$f" "${h}_count")
	[ -n "$count" ] && [ "$inf" = "$count" ] &&
		[ "$count" -ge "${3:-0}" ] &&
		grep "^${h}_bucket{" "$f" |
		awk '{ if ($2 < prev) exit 1; prev = $2 }'
}
tap_ok "the latency histogram is cumulative and counts every request" \
	histogram_consistent "$T_TMP/GW.prom" diplom_http_request_duration_seconds 7

tap_ok "ingest counts five accepted messages" \
	test "$(metric "$T_TMP/ING.prom" diplom_ingest_accepted_total)" = 5
tap_ok "the processor counts five processed, none failed" test \
	"$(metric "$T_TMP/PROC.prom" diplom_messages_processed_total)/$(metric "$T_TMP/PROC.prom" diplom_messages_failed_total)" = 5/0
tap_ok "the processor reports its queue depth" \
	test "$(metric "$T_TMP/PROC.prom" diplom_queue_depth)" = 0

# --- the series added for monitoring ----------------------------------------

build_info() {
	local role
	for role in GW:gateway:none ING:ingest:memory PROC:processor:memory; do
		metric "$T_TMP/${role%%:*}.prom" \
			"diplom_build_info{version=\"$("$DIPLOMD" --version | awk '{ print $2 }')\",backend=\"${role##*:}\",role=\"$(echo "$role" | cut -d: -f2)\"}" |
			grep -qx 1 || return 1
	done
}
tap_ok "every role says its version, backend and role in diplom_build_info" \
	build_info

started_lately() {
	local role now t
	now=$(date +%s)
	for role in GW ING PROC; do
		t=$(metric "$T_TMP/$role.prom" process_start_time_seconds)
		[ -n "$t" ] || return 1
		awk -v t="$t" -v now="$now" \
			'BEGIN { exit !(t > now - 120 && t <= now + 1) }' || return 1
	done
}
tap_ok "every role's process_start_time_seconds is its start, moments ago" \
	started_lately

P=$T_TMP/PROC.prom
tap_ok "the processing histogram counts the $N messages" \
	histogram_consistent "$P" diplom_processing_duration_seconds $N
tap_ok "and no more than them" \
	test "$(metric "$P" diplom_processing_duration_seconds_count)" = $N
tap_ok "the processor's /enqueue publishes are timed, $N of them" test \
	"$(histogram_consistent "$P" diplom_queue_publish_duration_seconds $N &&
		metric "$P" diplom_queue_publish_duration_seconds_count)" = $N
tap_ok "the commits wrote the $N rows" test \
	"$(histogram_consistent "$P" diplom_result_store_commit_rows 1 &&
		metric "$P" diplom_result_store_commit_rows_sum)" = "$N.000000"
tap_ok "every commit is timed" test \
	"$(histogram_consistent "$P" diplom_result_store_commit_duration_seconds 1 &&
		metric "$P" diplom_result_store_commit_duration_seconds_count)" = \
	"$(metric "$P" diplom_result_store_commit_rows_count)"
tap_ok "the processor reports 4 workers, none busy now" test \
	"$(metric "$P" diplom_workers)/$(metric "$P" diplom_workers_busy)" = 4/0
tap_ok "nothing pending, nothing unacknowledged, no store errors" test \
	"$(metric "$P" diplom_queue_pending)/$(metric "$P" diplom_queue_ack_pending)/$(metric "$P" diplom_result_store_errors_total)" = 0/0/0

# slow processing: the workers are seen busy, the work unacknowledged
stop_stack
PROCESSING_DELAY_MS=3000 PROCESSOR_WORKERS=2 start_stack ||
	bail "the slow stack did not start"
for i in 1 2 3; do
	curl -s -o /dev/null -d "{\"data\":\"s$i\"}" "$GW/api/v1/ingest"
done
sleep 0.5
curl -s -o "$T_TMP/SLOW.prom" "$PROC/metrics"
tap_ok "with slow processing both workers are busy" \
	test "$(metric "$T_TMP/SLOW.prom" diplom_workers_busy)" = 2
# a worker takes what is queued when it wakes: usually one each, so two
# are ack-pending and one waits, but one may have taken two
in_flight_ok() {
	local ap pe
	ap=$(metric "$T_TMP/SLOW.prom" diplom_queue_ack_pending)
	pe=$(metric "$T_TMP/SLOW.prom" diplom_queue_pending)
	tap_note "ack-pending $ap, pending $pe"
	[ "$ap" -ge 2 ] && [ $((ap + pe)) = 3 ]
}
tap_ok "the messages in flight are ack-pending, the others pending" in_flight_ok
stop_stack

# --- the same with nats --------------------------------------------------------

nats_part() {
	start_nats || bail "nats-server did not start"
	stack_env
	stack_roles || bail "the nats stack did not start"
	for i in $(seq $N); do
		curl -s -o /dev/null -d "{\"data\":\"n$i\"}" "$GW/api/v1/ingest"
	done
	wait_drained "$PROC" 20 || bail "the nats stack did not drain"
	for role in GW ING PROC; do
		curl -s -o "$T_TMP/nats-$role.prom" "${!role}/metrics"
	done
	tap_ok "nats: ingest times its $N publishes to the stream" test \
		"$(histogram_consistent "$T_TMP/nats-ING.prom" diplom_queue_publish_duration_seconds $N &&
			metric "$T_TMP/nats-ING.prom" diplom_queue_publish_duration_seconds_count)" = $N
	tap_ok "nats: the processing histogram counts the $N messages" test \
		"$(metric "$T_TMP/nats-PROC.prom" diplom_processing_duration_seconds_count)" = $N
	tap_ok "nats: the consumer's backlog and ack-pending are reported, 0 now" \
		test "$(metric "$T_TMP/nats-PROC.prom" diplom_queue_pending)/$(metric "$T_TMP/nats-PROC.prom" diplom_queue_ack_pending)" = 0/0
	tap_ok "nats: diplom_build_info says nats" grep -q \
		'^diplom_build_info{.*backend="nats",role="processor"} 1$' \
		"$T_TMP/nats-PROC.prom"
	if [ -n "$HAVE_PROMTOOL" ]; then
		tap_ok "nats: promtool check metrics accepts every role's /metrics" \
			promtool_ok "$T_TMP"/nats-*.prom
	fi
	stop_stack
}
if command -v nats-server >/dev/null 2>&1; then
	nats_part
elif [ "${DIPLOM_REQUIRE_NATS:-0}" = 1 ]; then
	bail "nats-server not found and DIPLOM_REQUIRE_NATS=1"
else
	tap_skip "the nats stack's series" "nats-server not installed"
fi
tap_done
