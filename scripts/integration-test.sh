#!/bin/bash
# The Go project's integration test against the local stack: a batch of
# messages through the gateway, every one processed and found by id, the
# counters agree. Usage: scripts/integration-test.sh [COUNT]
set -e
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../tests/lib.sh"
N=${1:-50}
GW=${GATEWAY_URL:-http://127.0.0.1:${API_PORT:-8080}}
PROC=${PROCESSOR_URL:-http://127.0.0.1:${PROCESSOR_PORT:-8082}}
ids=$T_TMP/ids

before=$(curl -sf --max-time 3 "$PROC/stats" | jq .pool.ProcessedCount) || {
	echo "FAIL: the processor at $PROC does not answer"; exit 1; }
for i in $(seq "$N"); do
	resp=$(curl -s --max-time 10 -H 'Content-Type: application/json' \
		-d "{\"source\":\"integration\",\"data\":\"msg-$i\",\"metadata\":{\"i\":\"$i\"}}" \
		"$GW/api/v1/ingest")
	printf '%s' "$resp" | jq -er .message_id >>"$ids" || {
		echo "FAIL: message $i not accepted: $resp"; exit 1; }
done
echo "sent $N messages"

# all_counted : the processor has counted N more since the start
all_counted() {
	now=$(proc_processed "$PROC")
	[ $((${now:-0} - before)) -ge "$N" ]
}
wait_until 10 all_counted || :
missing=0
while read -r id; do
	curl -sf --max-time 3 "$GW/api/v1/messages/$id" | jq -e '.success' >/dev/null ||
		missing=$((missing + 1))
done <"$ids"
echo "processed $((${now:-0} - before)), missing results $missing"
if [ "$missing" -ne 0 ]; then
	echo "FAIL"
	exit 1
fi
echo "OK"
