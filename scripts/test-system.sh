#!/bin/bash
# A quick look at a running stack, as the Go project's script did: health of
# each role, one message through the gateway, its result, the stats.
# GATEWAY_URL, INGEST_URL and PROCESSOR_URL point at the roles.
set -e
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../tests/lib.sh"
GW=${GATEWAY_URL:-http://127.0.0.1:${API_PORT:-8080}}
ING=${INGEST_URL:-http://127.0.0.1:${INGEST_PORT:-8081}}
PROC=${PROCESSOR_URL:-http://127.0.0.1:${PROCESSOR_PORT:-8082}}
fail=0

for url in "$GW" "$ING" "$PROC"; do
	if out=$(curl -sf --max-time 3 "$url/health"); then
		echo "health $url: $out"
	else
		echo "health $url: DOWN"
		fail=1
	fi
done

resp=$(curl -s --max-time 10 -H 'Content-Type: application/json' \
	-d '{"source":"test-system","data":"hello","metadata":{"via":"test-system.sh"}}' \
	"$GW/api/v1/ingest")
echo "ingest: $resp"
id=$(printf '%s' "$resp" | jq -r '.message_id // empty')
if [ -z "$id" ]; then
	echo "FAIL: the message was not accepted"
	exit 1
fi
# result_found : the gateway has a result for $id (in $res)
# shellcheck disable=SC2317 # run by wait_until
result_found() { res=$(curl -sf --max-time 3 "$GW/api/v1/messages/$id"); }
if wait_until 5 result_found; then
	echo "result: $res"
else
	echo "FAIL: no result for $id"
	fail=1
fi
echo "ingest stats: $(curl -s --max-time 3 "$ING/stats")"
echo "processor stats: $(curl -s --max-time 3 "$PROC/stats")"
[ "$fail" = 0 ] && echo "OK" || echo "FAIL"
exit "$fail"
