#!/bin/bash
# RESULTS_RETENTION deletes results processed longer ago and keeps newer
# ones, counted in diplom_results_pruned_total; RESULTS_MAX_BYTES keeps the
# store near its size, the oldest rows going first, and the file shrinks;
# LOG_FORMAT=json writes one JSON object a line.
. "$(dirname "$0")/lib.sh"
need_tools jq sqlite3

tap_plan 9

rows_like() { sql "$RESULTS" "SELECT count(*) FROM results WHERE message_id LIKE '$1%'"; }
pruned() {
	curl -s "$PROC/metrics" |
		awk '$1 == "diplom_results_pruned_total" { print $2 }'
}
enqueue() {
	local i
	for i in $(seq "$2"); do
		curl -s -o /dev/null -H 'Content-Type: application/json' \
			-d "{\"id\":\"$1-$i\",\"payload\":\"$3\"}" "$PROC/enqueue"
	done
}

stack_ports
RESULTS_RETENTION=10s LOG_FORMAT=json start_role processor processor
wait_health "$PROC" 10 || bail "the processor did not start"
enqueue old 50 aGk=
rows_are() { [ "$(rows_like "$1")" = "$2" ]; }
wait_until 10 rows_are old- 50 || bail "the first rows were not stored"
# the old rows age past 10 s, then newer ones come: a retention long
# enough that sending the newer ones on a slow machine does not age them
sleep 10
enqueue new 50 aGk=
tap_ok "rows older than the retention go" wait_until 15 rows_are old- 0
tap_ok "newer ones stay" rows_are new- 50
tap_ok "diplom_results_pruned_total counts them" test "$(pruned)" = 50
json_lines() {
	grep -q . "$T_TMP/processor.log" &&
		jq -e -s 'all(.[]; .role == "processor" and (.level | type) ==
			"string" and (.time | test("Z$")) and (.message | type) ==
			"string")' "$T_TMP/processor.log" >/dev/null
}
tap_ok "LOG_FORMAT=json: every line is a JSON object with time, level, role, message" \
	json_lines
stop_pid "$processor_PID" TERM

# a store of about 4 MB kept under 1 MB, with the package's retention
# (a week, which alone would prune once a minute)
RESULTS=$T_TMP/size.db
stack_ports
RESULTS_RETENTION=168h RESULTS_MAX_BYTES=1000000 start_role sized processor
wait_health "$PROC" 10 || bail "the processor did not start"
big=$(head -c 3000 /dev/zero | tr '\0' 'x' | base64 -w0)
enqueue big 1200 "$big"
size_of() { stat -c %s "$RESULTS"; }
# processed rows are checkpointed into the file in the end: wait for all
at_most() { [ "$(sql "$RESULTS" "SELECT count(*) FROM results")" -le "$1" ]; }
tap_ok "the store is pruned down to its size" wait_until 30 at_most 400
newest_kept() {
	[ "$(sql "$RESULTS" "SELECT count(*) FROM results WHERE message_id = 'big-1200'")" = 1 ]
}
tap_ok "the newest rows are the ones kept" wait_until 10 newest_kept
# the database and its log while the processor runs: a prune gives the
# space back at once, not at the next start
size_of_both() {
	echo $(($(stat -c %s "$RESULTS") + $(stat -c %s "$RESULTS-wal" 2>/dev/null || echo 0)))
}
small() { [ "$(size_of_both)" -lt 1500000 ]; }
wait_until 30 small || true
tap_ok "the running store and its log are near the limit: $(size_of_both) bytes" small
stop_pid "$sized_PID" TERM
tap_ok "the file is small again: $(size_of) bytes" test "$(size_of)" -lt 2000000

bad() {
	RESULTS_RETENTION=weekly "$DIPLOMD" --role=processor 2>&1 |
		grep -q "RESULTS_RETENTION"
}
tap_ok "a bad RESULTS_RETENTION is a usage error naming it" bad
tap_done
