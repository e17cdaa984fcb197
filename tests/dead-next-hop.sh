#!/bin/bash
# A dead next hop is a quick 503, never a hang, and a slow client does not
# stall others; everything recovers when the hop comes back.
. "$(dirname "$0")/lib.sh"

tap_plan 6
start_stack || bail "the stack did not start"

# A client that sends headers and half a body, then stalls for a while.
{
	printf 'POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"data":'
	sleep 5
} | timeout 8 bash -c "cat >/dev/tcp/127.0.0.1/$GW_PORT" 2>/dev/null &
slow=$!
sleep 0.3

quick_while_stalled() {
	local t0 t1 out
	t0=$(date +%s%N)
	out=$(post_json "$GW/api/v1/ingest" '{"source":"fast","data":"x"}')
	t1=$(date +%s%N)
	[ "${out%% *}" = 200 ] && [ $(( (t1 - t0) / 1000000 )) -lt 1000 ]
}
tap_ok "a stalled upload does not hold up other requests" quick_while_stalled
kill "$slow" 2>/dev/null

stop_pid "$processor_PID" KILL
fast_503() {
	local t0 t1 code
	t0=$(date +%s%N)
	code=$(curl -s -o "$T_TMP/out" -D "$T_TMP/hdr" -w '%{http_code}' \
		--max-time 10 -H 'Content-Type: application/json' \
		-d '{"data":"x"}' "$GW/api/v1/ingest")
	t1=$(date +%s%N)
	echo "# 503 after $(( (t1 - t0) / 1000000 )) ms" >&2
	[ "$code" = 503 ] && [ $(( (t1 - t0) / 1000000 )) -lt 3000 ] &&
		grep -qi '^Retry-After:' "$T_TMP/hdr" &&
		jq -e '.error | test("unavailable")' "$T_TMP/out" >/dev/null
}
tap_ok "with the processor dead, ingest answers 503 within 3 s" fast_503

processor_unhealthy() {
	[ "$(curl -s "$GW/api/v1/status" | jq .processor.healthy)" = false ]
}
tap_ok "gateway status shows the processor unhealthy" processor_unhealthy
failed_counted() {
	[ "$(curl -s "$ING/stats" | jq .TotalFailed)" -ge 1 ]
}
tap_ok "ingest counts the failure" failed_counted

start_role processor processor
wait_http "$PROC/health" 10
recovered() {
	local out
	out=$(post_json "$GW/api/v1/ingest" '{"source":"back","data":"y"}')
	[ "${out%% *}" = 200 ]
}
tap_ok "with the processor back, messages are accepted again" recovered

stop_pid "$ingest_PID" KILL
gateway_503() {
	[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
		-d '{"data":"z"}' "$GW/api/v1/ingest")" = 503 ]
}
tap_ok "with ingest dead, the gateway answers 503" gateway_503
tap_done
