#!/bin/bash
# Several processors behind one ingest on the memory backend: PROCESSOR_URL
# lists two; ingest spreads the messages over both (round robin), offers a
# message to the next when one is down (SIGKILL) or full, and answers 503
# only once each refused it, quickly, never a hang.
. "$(dirname "$0")/lib.sh"

tap_plan 13
need_loadgen
stack_ports
P1=$PROC
P2_PORT=$(free_port)
P2=http://127.0.0.1:$P2_PORT
export PROCESSOR_URL="$P1,$P2"

# start_p2 [ARGS...] : the second processor, on its own port and store
start_p2() {
	PROCESSOR_PORT=$P2_PORT RESULTS_DB=$T_TMP/results2.db \
		start_role p2 processor "$@"
	wait_health "$P2" 10
}
start_role p1 processor
if ! wait_health "$P1" 10 || ! start_p2; then
	bail "the processors did not start"
fi
start_role ingest ingest
start_role gateway gateway
if ! wait_health "$ING" 10 || ! wait_health "$GW" 10; then
	bail "the stack did not start"
fi

enqueued() { stat_of "$1/stats" .queue.TotalEnqueued; }
failovers() {
	curl -s "$ING/metrics" | awk '$1 == "diplom_ingest_failovers_total" { print $2 }'
}
# send LABEL LOADGEN_ARGS... : diplom-loadgen through the gateway,
# recording under LABEL, JSON summary in $T_TMP/LABEL.json
send() {
	local label=$1
	shift
	"$DIPLOM_LOADGEN" --url "$GW/api/v1/ingest" --record "$T_TMP/sent.db" \
		--label "$label" --json "$@" >"$T_TMP/$label.json" 2>"$T_TMP/$label.err"
}
all_accepted() {
	jq -e ".accepted == $2 and .rejected == 0 and .errors == 0" \
		"$T_TMP/$1.json" >/dev/null
}

# spread: round robin over both
send spread -n 400 -c 8
e1=$(enqueued "$P1"); e2=$(enqueued "$P2")
tap_note "split: p1 $e1, p2 $e2"
tap_ok "400 messages accepted" all_accepted spread 400
tap_ok "both processors got messages (round robin)" \
	test "$e1" -ge 100 -a "$e2" -ge 100
stores=("$T_TMP/results.db" "$T_TMP/results2.db")
tap_ok "each accepted message has one row, in one of the two stores" \
	wait_until 20 all_once "${stores[@]}"

# one processor SIGKILLed while a client sends: every request still lands
send kill --rate 200 --duration 3 -c 4 &
load_pid=$!
track "$load_pid"
sleep 1
stop_pid "$p2_PID" KILL
wait "$load_pid"
untrack "$load_pid"
tap_note "across the kill: $(jq -c '{sent, accepted, rejected, errors}' "$T_TMP/kill.json")"
none_refused() {
	jq -e '.sent > 0 and .accepted == .sent and .rejected == 0 and
		.errors == 0' "$T_TMP/$1.json" >/dev/null
}
tap_ok "with one processor killed, every request is still accepted" \
	none_refused kill
before=$(enqueued "$P1")
send after -n 100 -c 4
tap_ok "later requests are all accepted" all_accepted after 100
tap_ok "by the live processor" test "$(enqueued "$P1")" -eq $((before + 100))
tap_ok "ingest counts the failovers" test "$(failovers)" -gt 0

# a full processor: one slow worker, room for one more message
start_p2 --queue-size=1 --workers=1 --processing-delay-ms=20000 ||
	bail "the slow processor did not start"
before=$(enqueued "$P1")
send full -n 20 -c 1
e2=$(enqueued "$P2")
tap_note "with p2 full: p1 took $(( $(enqueued "$P1") - before )), p2 $e2"
tap_ok "with one processor full, every request is still accepted" \
	all_accepted full 20
tap_ok "the full one took what it had room for (2), the other the rest" \
	test "$e2" -le 2 -a "$(enqueued "$P1")" -ge $((before + 18))

# post_timed : one message through the gateway; "CODE MS" on stdout
post_timed() {
	local t0 t1 code
	t0=$(date +%s%N)
	code=$(curl -s -o "$T_TMP/out" -D "$T_TMP/hdr" -w '%{http_code}' \
		--max-time 20 -H 'Content-Type: application/json' \
		-d '{"data":"x"}' "$GW/api/v1/ingest")
	t1=$(date +%s%N)
	echo "$code $(( (t1 - t0) / 1000000 ))"
}
# refused_quickly WHAT : 503 within 3 s, with Retry-After and a reason
# naming WHAT and that both processors were tried
refused_quickly() {
	local r
	r=$(post_timed)
	tap_note "503 after ${r#* } ms: $(cat "$T_TMP/out")"
	[ "${r% *}" = 503 ] && [ "${r#* }" -lt 3000 ] &&
		grep -qi '^Retry-After:' "$T_TMP/hdr" &&
		jq -e --arg w "$1" '.error | test($w) and test("2 of 2 processors tried")' \
			"$T_TMP/out" >/dev/null
}
stop_pid "$p1_PID" KILL
tap_ok "one down, the other full: the client gets 503 quickly" \
	refused_quickly "Queue is full|unavailable"
stop_pid "$p2_PID" KILL
tap_ok "both down: the client gets 503 quickly" \
	refused_quickly "processor unavailable"
tap_ok "ingest counts the refusals" \
	test "$(stat_of "$ING/stats" .TotalFailed)" -eq 2
# the accepted messages of the first two rounds are each in one store
# (what the killed one held was lost with it: the memory backend)
tap_ok "no message has a row in both stores" \
	test "$(in_two_stores "${stores[@]}")" = 0
tap_done
