#!/bin/bash
# diplomctl against a memory stack: usage errors; status healthy and not
# (exit 0 / 1, the reason); show; failed with --since and --limit; replay
# of failed rows written into the store before the processor starts (the
# one that succeeds replaces its row), refusals, --all-failed; drain with
# a backlog, resume; the endpoints behind them; switch refusing a target
# it cannot reach, the default file untouched.
. "$(dirname "$0")/lib.sh"
need_tools jq sqlite3 curl cmp
need_loadgen

need_ctl
tap_plan

# --- usage --------------------------------------------------------------------

tap_ok "no command is a usage error (exit 2)" exits 2
tap_ok "an unknown command is a usage error (exit 2)" exits 2 restart
tap_ok "show without an id is a usage error (exit 2)" exits 2 show
tap_ok "an option of another command is a usage error (exit 2)" \
	exits 2 status --since 1h
tap_ok "a bad value in the environment is a usage error naming it" \
	eval 'API_PORT=0 exits 2 status && err_has API_PORT'
tap_ok "--help exits 0" exits 0 --help

# --- a stack with failed rows in its store --------------------------------------

stack_ports
# one slow worker: a backlog builds up for drain to wait for
export PROCESSOR_WORKERS=1 PROCESSING_DELAY_MS=20 QUEUE_SIZE=5000
start_role processor processor
wait_health "$PROC" 10 || bail "the processor did not start"
stop_pid "$processor_PID"

now=$(date +%s)
good_msg() {
	printf '{"id":"%s","timestamp":%d,"source":"t","payload":"%s"}' \
		"$1" "$now" "$(printf '%s' "$2" | base64)"
}
# fail_row ID AGE_SECONDS MESSAGE|NULL
fail_row() {
	local msg=NULL
	[ "$3" != NULL ] && msg="CAST('$3' AS BLOB)"
	sql "$RESULTS" "INSERT INTO results (message_id, source, timestamp,
	    processed_at, success, error, result, deliveries, message) VALUES
	    ('$1', 't', $now, $((now - $2)), 0, 'given up: test', '', 1,
	    $msg)"
}
fail_row failed-old 7200 "$(good_msg failed-old old)"
fail_row failed-new 60 "$(good_msg failed-new new)"
fail_row failed-kept-none 30 NULL
fail_row failed-garbage 20 'this is {not json'
tap_ok "failed rows are written into the store" \
	test "$(sql "$RESULTS" 'SELECT count(*) FROM results')" = 4

stack_roles || bail "the stack did not start"
ids=$T_TMP/ids
: >"$ids"
for i in 1 2 3 4 5; do
	ingest_one "hello$i" | awk '$1 == 200 { print $2 }' >>"$ids"
done
processed_id=$(head -n 1 "$ids")
tap_ok "five messages are accepted" test "$(wc -l <"$ids")" = 5
wait_drained "$PROC" 10

# --- status ---------------------------------------------------------------------

tap_ok "status on a healthy stack exits 0" exits 0 status
tap_ok "status names each role healthy and the backend" \
	eval 'out_has "^gateway .*healthy" && out_has "^ingest .*healthy" &&
	    out_has "^processor .*healthy" && out_has "^backend *memory"'
tap_ok "status shows the counts with rates and the store" \
	eval 'out_has "^accepted *5 (0.0/s)" && out_has "^processed *5 " &&
	    out_has "^results *9 rows, 4 failed"'
tap_ok "status --json: healthy, backend, backlog, counts, store" \
	eval 'exits 0 status --json --interval 0 &&
	    jout ".healthy and .backend == \"memory\" and .backlog == 0 and
		.accepted == 5 and .processed == 5 and .rates.accepted == null
		and (.roles | length) == 3 and
		.roles[2].results.rows == 9 and .roles[2].results.failed == 4"'
rates_counted() {
	"$DIPLOM_LOADGEN" --url "$GW/api/v1/ingest" --rate 100 --duration 4 \
		-c 4 --json >"$T_TMP/lg.json" 2>/dev/null &
	local lg=$!
	sleep 1
	exits 0 status --json --interval 2s
	wait "$lg"
	jout '.rates.accepted > 20 and .rates.processed > 0'
}
tap_ok "status --json counts the rates over --interval" rates_counted
ingest_one hello >/dev/null
wait_drained "$PROC" 10

stop_pid "$processor_PID"
tap_ok "status with the processor down exits 1" exits 1 status --interval 0
tap_ok "and says which role is unhealthy, and why" \
	eval 'out_has "^processor .*UNHEALTHY: no answer" &&
	    out_has "^gateway .*healthy"'
start_role processor processor
wait_health "$PROC" 10 || bail "the processor did not start again"
tap_ok "status is 0 again once it is back" exits 0 status --interval 0

# --- show ------------------------------------------------------------------------

tap_ok "show of a processed message exits 0 with its result" \
	eval 'exits 0 show "$processed_id" && out_has "^state *processed" &&
	    out_has "^result *PROCESSED_hello1"'
tap_ok "show --json adds the state and the processor" \
	eval 'exits 0 show --json "$processed_id" &&
	    jout ".state == \"processed\" and .processor == \"$PROC\" and
		.message_id == \"$processed_id\""'
tap_ok "show of a failed message exits 1 with its error" \
	eval 'exits 1 show failed-new && out_has "^state *failed" &&
	    out_has "^error *given up: test"'
tap_ok "show of an unknown id exits 1" \
	eval 'exits 1 show no-such-id && err_has "not found"'

# --- failed ----------------------------------------------------------------------

order() { awk 'NR > 1 { print $3 }' "$T_TMP/out" | paste -sd ' '; }
tap_ok "failed lists every failed message, newest first" \
	eval 'exits 0 failed &&
	    [ "$(order)" = "failed-garbage failed-kept-none failed-new failed-old" ]'
tap_ok "failed --limit 2 lists the two newest" \
	eval 'exits 0 failed --limit 2 &&
	    [ "$(order)" = "failed-garbage failed-kept-none" ]'
tap_ok "failed --since 1h leaves out the older one" \
	eval 'exits 0 failed --since 1h --json &&
	    jout "(.failed | length) == 3 and
		all(.failed[]; .message_id != \"failed-old\")"'
tap_ok "failed --json says which can be replayed" \
	eval 'exits 0 failed --json &&
	    jout "[.failed[] | select(.kept) | .message_id] | sort ==
		[\"failed-garbage\", \"failed-new\", \"failed-old\"]"'
tap_ok "GET /failed refuses a bad limit (400)" \
	test "$(http_code "$PROC/failed?limit=0")" = 400

# --- replay ------------------------------------------------------------------------

tap_ok "replay of a failed message exits 0" exits 0 replay failed-old
replaced() {
	[ "$(sql "$RESULTS" "SELECT success, deliveries, message IS NULL,
	    result FROM results WHERE message_id = 'failed-old'")" = \
		"1|2|1|PROCESSED_old" ]
}
tap_ok "its success replaced the failed row (one row, no message kept)" \
	wait_until 10 replaced
tap_ok "show of the replayed message exits 0" exits 0 show failed-old
tap_ok "replay of a message that did not fail exits 1" \
	eval 'exits 1 replay "$processed_id" && out_has "did not fail"'
tap_ok "replay of a message that was not kept exits 1" \
	eval 'exits 1 replay failed-kept-none && out_has "before failed messages were kept"'
tap_ok "replay of bytes that cannot be decoded exits 1" \
	eval 'exits 1 replay failed-garbage && out_has "cannot be decoded"'
tap_ok "replay of an unknown id exits 1" \
	eval 'exits 1 replay no-such-id && out_has "not found"'
tap_ok "POST /replay answers 404 and 409 as documented" \
	eval '[ "$(curl -s -o /dev/null -w "%{http_code}" -X POST \
	    "$PROC/replay/no-such-id")" = 404 ] &&
	    [ "$(curl -s -o /dev/null -w "%{http_code}" -X POST \
	    "$PROC/replay/$processed_id")" = 409 ]'
tap_ok "replay --all-failed --since 1h replays what can be, skips the rest" \
	eval 'exits 0 replay --all-failed --since 1h &&
	    out_has "^failed-new: replayed" &&
	    out_has "^failed-garbage: skipped" &&
	    out_has "^failed-kept-none: skipped"'
new_replaced() {
	[ "$(sql "$RESULTS" "SELECT success FROM results
	    WHERE message_id = 'failed-new'")" = 1 ]
}
tap_ok "and that replay succeeded too" wait_until 10 new_replaced
tap_ok "two failed rows remain" \
	eval 'exits 0 failed --json && jout "(.failed | length) == 2"'

# --- drain and resume --------------------------------------------------------------

"$DIPLOM_LOADGEN" --url "$GW/api/v1/ingest" -n 200 -c 20 --json \
	>"$T_TMP/burst.json" 2>/dev/null
tap_ok "200 messages are queued behind one slow worker" \
	eval 'jq -e ".accepted == 200" "$T_TMP/burst.json" >/dev/null'
tap_ok "drain --timeout 300ms gives up on that backlog (exit 1)" \
	eval 'exits 1 drain --timeout 300ms && out_has "not drained"'
tap_ok "GET /admin: ingest does not accept" \
	eval 'curl -s "$ING/admin" | jq -e ".accepting == false and
	    .backend == \"memory\"" >/dev/null'
tap_ok "drain waits until the backlog is 0 (exit 0)" \
	eval 'exits 0 drain && out_has "^drained"'
# what ingest accepted, and the two replays
tap_ok "after drain every accepted message has its result" \
	test "$(sql "$RESULTS" 'SELECT count(*) FROM results WHERE success = 1')" \
	= "$(( $(stat_of "$ING/stats" .TotalSent) + 2 ))"
tap_ok "ingest's /health says it drains for maintenance (503)" \
	eval '[ "$(http_code "$ING/health")" = 503 ] &&
	    curl -s "$ING/health" | grep -q "draining for maintenance"'
tap_ok "a message through the gateway meanwhile is refused (503)" \
	eval '[ "$(ingest_one refused | cut -d" " -f1)" = 503 ]'
tap_ok "status exits 1 while ingest drains" \
	eval 'exits 1 status --interval 0 &&
	    out_has "^ingest .*draining for maintenance"'
tap_ok "resume exits 0" exits 0 resume
tap_ok "messages are accepted again" \
	eval '[ "$(ingest_one again | cut -d" " -f1)" = 200 ]'
tap_ok "status exits 0 again" exits 0 status --interval 0
tap_ok "resume --json answers as GET /admin" \
	eval 'exits 0 resume --json && jout ".accepting == true and
	    .in_flight == 0 and .role == \"ingest\""'

# --- switch refuses ------------------------------------------------------------------

conf=$T_TMP/diplom.default
cp "$top_srcdir/debian/diplom.default" "$conf"
cp "$conf" "$T_TMP/diplom.default.orig"
sed -i "s|^NATS_URL=.*|NATS_URL=nats://127.0.0.1:$(free_port)|" "$conf"
cp "$conf" "$T_TMP/diplom.default.before"
tap_ok "switch nats without a broker refuses (exit 1)" \
	eval 'exits 1 switch nats --config "$conf" --systemctl=false &&
	    err_has "no NATS server with JetStream" &&
	    err_has "nothing changed"'
tap_ok "and leaves the default file as it was" \
	cmp -s "$conf" "$T_TMP/diplom.default.before"
tap_ok "and the roles running" \
	eval 'exits 0 status --interval 0'
tap_ok "switch without a default file refuses (exit 1)" \
	eval 'exits 1 switch memory --systemctl=false && err_has "no "'
tap_ok "switch with an unreadable --config is a usage error (exit 2)" \
	exits 2 switch memory --config "$T_TMP/none"

tap_done
