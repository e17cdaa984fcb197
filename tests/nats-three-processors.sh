#!/bin/bash
# Three processors on three hosts (127.0.1.1, .2, .3, each with its own
# results database) share the one durable consumer; the gateway and ingest
# list all three in PROCESSOR_URL. Every accepted message has exactly one
# row across the three stores, the gateway finds each one, an unknown id is
# 404, and with one processor stopped a lookup of what it holds is a 503,
# never a false 404, while what the others hold is still found.
. "$(dirname "$0")/lib.sh"
need_nats

tap_plan 14
need_loadgen
start_nats || bail "nats-server did not start"
stack_env
export PROCESSING_DELAY_MS=1 PROCESSOR_WORKERS=2
# one port on three loopback addresses, as on three hosts
for i in 1 2 3; do
	eval "P$i=http://127.0.1.$i:$PROC_PORT"
	LISTEN_ADDRESS=127.0.1.$i RESULTS_DB=$T_TMP/results$i.db \
		start_role "p$i" processor
done
export PROCESSOR_URL="$P1,$P2,$P3"
start_role ingest ingest
start_role gateway gateway
for url in "$P1" "$P2" "$P3" "$ING" "$GW"; do
	wait_health "$url" 10 || bail "the stack did not start"
done
stores=("$T_TMP/results1.db" "$T_TMP/results2.db" "$T_TMP/results3.db")

N=3000
t0=$(date +%s%N)
"$DIPLOM_LOADGEN" --url "$GW/api/v1/ingest" -n "$N" -c 16 \
	--record "$T_TMP/sent.db" --label three --json >"$T_TMP/load.json" \
	2>"$T_TMP/load.err"
tap_note "load: $(jq -c '{sent, accepted, rejected, errors, throughput,
	p99_ms: .latency_ms.p99}' "$T_TMP/load.json")"
all_accepted() {
	jq -e ".accepted == $N and .rejected == 0 and .errors == 0" \
		"$T_TMP/load.json" >/dev/null
}
tap_ok "$N messages accepted" all_accepted
tap_ok "$N ids recorded" test "$(sent_count "$T_TMP/sent.db")" = "$N"
tap_ok "each accepted message has exactly one row across the stores" \
	wait_until 90 all_once "${stores[@]}"
t1=$(date +%s%N)
tap_note "sent and processed in $(( (t1 - t0) / 1000000 )) ms"
tap_ok "no message has a row in two stores" \
	test "$(in_two_stores "${stores[@]}")" = 0
strangers_in_stores() {
	stores_sql 'SELECT count(*) FROM every_row WHERE message_id NOT IN
		(SELECT message_id FROM sent)' "${stores[@]}"
}
tap_ok "and no row is of a message nobody sent" \
	test "$(strangers_in_stores)" = 0
rows_in() { sql "$T_TMP/results$1.db" 'SELECT count(*) FROM results'; }
tap_note "split: p1 $(rows_in 1), p2 $(rows_in 2), p3 $(rows_in 3)"
tap_ok "each processor processed some" \
	test "$(rows_in 1)" -gt 0 -a "$(rows_in 2)" -gt 0 -a "$(rows_in 3)" -gt 0

# lookup ID : "CODE" of GET /api/v1/messages/ID, body in $T_TMP/found,
# the seconds it took appended to $T_TMP/lookup.times
lookup() {
	curl -s -o "$T_TMP/found" -w '%{http_code} %{time_total}\n' \
		--max-time 15 "$GW/api/v1/messages/$1" >"$T_TMP/lookup.out"
	cut -d' ' -f2 "$T_TMP/lookup.out" >>"$T_TMP/lookup.times"
	cut -d' ' -f1 "$T_TMP/lookup.out"
}
# ids_of SQL : message ids, one a line
ids_of() { stores_sql "$1" "${stores[@]}"; }
found_all() {
	local id code bad=0 n=0
	: >"$T_TMP/lookup.times"
	for id in $(ids_of 'SELECT message_id FROM sent ORDER BY random() LIMIT 200'); do
		n=$((n + 1))
		code=$(lookup "$id")
		if [ "$code" != 200 ] ||
			[ "$(jq -r .message_id "$T_TMP/found")" != "$id" ]; then
			echo "# $id: $code $(cat "$T_TMP/found")"
			bad=$((bad + 1))
		fi
	done
	tap_note "lookups of 200 ids through the gateway, three processors" \
		"asked each: $(awk '{ s += $1; if ($1 > m) m = $1 }
		END { printf "mean %.2f ms, max %.2f ms", s / NR * 1000, m * 1000 }' \
		"$T_TMP/lookup.times")"
	[ "$n" = 200 ] && [ "$bad" = 0 ]
}
tap_ok "200 sampled ids are all found through the gateway" found_all
unknown_404() {
	[ "$(lookup 00000000-0000-4000-8000-000000000000)" = 404 ] &&
		jq -e '.error == "result not found"' "$T_TMP/found" >/dev/null
}
tap_ok "an unknown id is 404 {\"error\":\"result not found\"}" unknown_404

curl -s "$GW/api/v1/status" >"$T_TMP/status.json"
status_lists_all() {
	jq -e --arg u "$PROCESSOR_URL" '[.processors[].url] | join(",") == $u' \
		"$T_TMP/status.json" >/dev/null &&
		jq -e '(.processors | all(.healthy)) and .processor.healthy and
			.processor.stats.pool.ProcessedCount ==
			([.processors[].stats.pool.ProcessedCount] | add)' \
			"$T_TMP/status.json" >/dev/null
}
tap_ok "status lists the three, healthy, and sums their stats" \
	status_lists_all

# the third host goes away: what it holds can no longer be told apart
# from what nobody holds
stop_pid "$p3_PID"
in_store() {
	ids_of "SELECT message_id FROM every_row WHERE store = $1 LIMIT 1"
}
held_by_stopped_503() {
	[ "$(lookup "$(in_store 3)")" = 503 ] &&
		jq -e '.error | test("may hold it")' "$T_TMP/found" >/dev/null
}
tap_ok "with p3 stopped, a lookup of an id it holds is 503" \
	held_by_stopped_503
tap_note "$(cat "$T_TMP/found")"
tap_ok "an id a live processor holds is still 200" \
	test "$(lookup "$(in_store 1)")" = 200
tap_ok "an unknown id is 503 too: p3 might hold it" \
	test "$(lookup 00000000-0000-4000-8000-000000000000)" = 503
p3_unhealthy() {
	curl -s "$GW/api/v1/status" | jq -e '.processor.healthy and
		([.processors[].healthy] == [true, true, false])' >/dev/null
}
tap_ok "status shows p3 unhealthy, the processors still healthy" \
	p3_unhealthy
tap_ok "the gateway's own health is unaffected" wait_health "$GW" 2
tap_done
