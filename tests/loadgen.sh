#!/bin/bash
# diplom-loadgen against a live memory-backend stack: every accepted id is
# recorded and processed, --json is one object with the documented keys,
# and --retry rides out a queue that keeps turning messages away.
. "$(dirname "$0")/lib.sh"

need_tools jq sqlite3
need_loadgen

tap_plan 14

# --- usage errors never send anything ---
usage_exit() {
	"$DIPLOM_LOADGEN" "$@" >/dev/null 2>"$T_TMP/usage.err"
	[ $? -eq 2 ] && [ "$(wc -l <"$T_TMP/usage.err")" -ge 1 ]
}
tap_ok "a bad -c value is a usage error (exit 2)" usage_exit -c zero
tap_ok "-n and --duration together are a usage error" \
	usage_exit -n 5 --duration 1
names_option() { grep -q -- "for -c:" "$T_TMP/usage.err"; }
usage_exit -c zero
tap_ok "the usage error names the option" names_option

# --- a plain run, recorded ---
QUEUE_SIZE=100000 start_stack || bail "the stack did not start"
SENT=$T_TMP/sent.db
"$DIPLOM_LOADGEN" --url "$GW/api/v1/ingest" -n 300 -c 8 --record "$SENT" \
	--label plain >"$T_TMP/plain.out" 2>"$T_TMP/plain.log"
rc=$?
sed 's/^/# /' "$T_TMP/plain.out"
tap_ok "a run exits 0" test "$rc" -eq 0
tap_ok "300 accepted" grep -qx 'accepted    300' "$T_TMP/plain.out"
tap_ok "300 rows in sent, labelled" test \
	"$(sql "$SENT" "SELECT count(*) FROM sent WHERE label = 'plain'")" = 300

all_sent_processed() {
	local missing
	missing=$(sql "$SENT" "ATTACH '$RESULTS' AS r;
		SELECT count(*) FROM sent
		WHERE message_id NOT IN (SELECT message_id FROM r.results)" \
		2>/dev/null) || return 1
	[ "$missing" = 0 ]
}
tap_ok "every recorded id has a result row" wait_until 30 all_sent_processed
accepted_at_is_ms() {
	local now
	now=$(date +%s%3N)
	[ "$(sql "$SENT" "SELECT count(*) FROM sent
		WHERE accepted_at BETWEEN $now - 600000 AND $now")" = 300 ]
}
tap_ok "accepted_at is Unix milliseconds" accepted_at_is_ms

# --- --json ---
"$DIPLOM_LOADGEN" --url "$GW/api/v1/ingest" -n 50 -c 4 --json \
	>"$T_TMP/json.out" 2>"$T_TMP/json.log"
sed 's/^/# /' "$T_TMP/json.out"
json_has_keys() {
	[ "$(wc -l <"$T_TMP/json.out")" = 1 ] &&
	jq -e '.accepted == 50 and .rejected == 0 and .errors == 0
		and .sent == 50
		and (.rejected_by_status | type) == "object"
		and (.throughput | type) == "number" and .throughput > 0
		and (.elapsed_s | type) == "number"
		and ([.latency_ms.p50, .latency_ms.p90, .latency_ms.p99,
		      .latency_ms.max] | map(type) == ["number","number",
		      "number","number"])
		and .latency_ms.p50 <= .latency_ms.max' \
		"$T_TMP/json.out" >/dev/null
}
tap_ok "--json prints one object with the documented keys" json_has_keys

stop_stack
unset RESULTS

# --- a queue of 5 turns messages away with 503 ---
RESULTS=$T_TMP/results-small.db
QUEUE_SIZE=5 PROCESSOR_WORKERS=1 PROCESSING_DELAY_MS=5 start_stack \
	|| bail "the small-queue stack did not start"
"$DIPLOM_LOADGEN" --url "$GW/api/v1/ingest" -n 300 -c 8 --json \
	>"$T_TMP/noretry.out" 2>"$T_TMP/noretry.log"
sed 's/^/# no retry: /' "$T_TMP/noretry.out"
# jqe FILTER FILE : FILTER holds for the JSON in FILE
jqe() { jq -e "$1" "$2" >/dev/null; }
tap_ok "without --retry, 503s are counted as rejected" jqe \
	'.rejected > 0 and .rejected_by_status["503"] == .rejected
	 and .accepted + .rejected + .errors == 300' "$T_TMP/noretry.out"

RETRY_SENT=$T_TMP/retry.db
"$DIPLOM_LOADGEN" --url "$GW/api/v1/ingest" -n 300 -c 8 --retry 1000 \
	--record "$RETRY_SENT" --label retry --json \
	>"$T_TMP/retry.out" 2>"$T_TMP/retry.log"
sed 's/^/# retry: /' "$T_TMP/retry.out"
tap_ok "with --retry, every message is eventually accepted" jqe \
	'.accepted == 300 and .rejected == 0 and .errors == 0
	 and .retries > 0' "$T_TMP/retry.out"
tap_ok "with --retry, 300 ids recorded once each" test \
	"$(sql "$RETRY_SENT" "SELECT count(DISTINCT message_id) FROM sent")" \
	= 300
SENT=$RETRY_SENT
tap_ok "every retried message is processed" wait_until 60 all_sent_processed

# --- SIGINT stops sending, waits, flushes and still prints the summary ---
INT_SENT=$T_TMP/int.db
"$DIPLOM_LOADGEN" --url "$GW/api/v1/ingest" --duration 60 -c 4 --rate 200 \
	--retry 1000 --record "$INT_SENT" --json \
	>"$T_TMP/int.out" 2>"$T_TMP/int.log" &
lg_pid=$!
track "$lg_pid"
sleep 1
kill -INT "$lg_pid"
wait "$lg_pid"
int_rc=$?
untrack "$lg_pid"
sed 's/^/# SIGINT: /' "$T_TMP/int.out"
interrupted_cleanly() {
	local acc
	[ "$int_rc" -eq 0 ] || return 1
	acc=$(jq -e '.accepted' "$T_TMP/int.out") || return 1
	[ "$acc" -gt 0 ] &&
	[ "$(sql "$INT_SENT" "SELECT count(*) FROM sent")" = "$acc" ]
}
tap_ok "SIGINT: summary printed and every accepted id recorded" \
	interrupted_cleanly
tap_done
