#!/bin/bash
# Back-pressure on NATS: a stream of 40 (discard new) with no processor takes
# exactly 40 of 60 and refuses 20 with 503; a processor then processes the 40.
. "$(dirname "$0")/lib.sh"
need_nats

tap_plan 5
start_nats || bail "nats-server did not start"
stack_env
export NATS_MAX_MSGS=40
start_role ingest ingest
start_role gateway gateway
wait_http "$ING/health" 10 && wait_http "$GW/health" 10 ||
	bail "ingest and gateway did not start"

send_n 60 bp "$T_TMP/sent"
echo "# $(cut -d' ' -f1 "$T_TMP/sent" | sort | uniq -c | tr '\n' ' ')"
tap_ok "exactly 40 accepted" test "$(accepted_in "$T_TMP/sent")" -eq 40
tap_ok "exactly 20 refused with 503" \
	test "$(awk '$1 == 503' "$T_TMP/sent" | wc -l)" -eq 20

retry_after() {
	curl -s -D - -o /dev/null -H 'Content-Type: application/json' \
		-d '{"source":"t","data":"one more","metadata":{}}' \
		"$ING/ingest" | grep -qi '^Retry-After:'
}
tap_ok "a refusal carries Retry-After" retry_after

start_role processor processor
wait_http "$PROC/health" 10
tap_ok "all 40 accepted are processed" wait_until 20 all_processed "$T_TMP/sent"
tap_ok "no refused message was processed" \
	test "$(sql "$RESULTS" 'SELECT count(*) FROM results')" -eq 40
tap_done
