#!/bin/bash
# The gateway's forward batches (FORWARD_BATCH): single requests that arrive
# at once go on to ingest as one batch, and each client still gets the
# answer it would get alone; a 200 still means the backend holds the
# message (a queue that fills, a processor SIGKILLed on nats).
. "$(dirname "$0")/lib.sh"
need_loadgen
need_tools jq python3 sqlite3

tap_plan 15

SENDER=$top_srcdir/tests/forward-batch.py

# bodies FILE : the raw bodies, one JSON string a line: good ones, and one
# or two of every kind a gateway must not batch or ingest must refuse
bodies() {
	python3 - "$1" <<'PY'
import json, sys
b = ['{"source":"fb","data":"good-%d"}' % i for i in range(30)]
b += ['{"source":7}'] * 3
b += ['{"source":"fb","data":'] * 3
b += ['{"source":"fb","data":"k","idempotency_key":"same-key"}'] * 2
b += ['{\n  "source": "fb",\n  "data": "on lines"\n}'] * 2
b += ['   ', '[{"source":"fb"}]', '{"source":"fb","data":"a\\u0000b"}']
b += ['{"source":"fb","metadata":{"k":1}}'] * 2
b += ['  {"source":"fb","data":"indented"}', '{"data":"x"} {"data":"y"}']
with open(sys.argv[1], "w") as f:
    for x in b:
        f.write(json.dumps(x) + "\n")
PY
}

# metric URL NAME : a counter of /metrics, 0 when absent
metric() {
	curl -s --max-time 5 "$1/metrics" |
		awk -v n="$2" '$1 == n { v = $2 } END { print v + 0 }'
}

# reference OUT : each distinct body sent alone through a gateway with
# FORWARD_BATCH=1, its status and answer (ids made neutral)
reference() {
	python3 "$SENDER" "$GW1/api/v1/ingest" 1 "$T_TMP/bodies" "$1.raw" &&
		jq -c '{body, status, answer: (.answer | fromjson? //
			. | if type == "object" and has("message_id")
			then .message_id = "ID" else . end)}' "$1.raw" |
		sort -u >"$1"
}

# same_as_alone RUN REF : every answer of RUN is its body's answer in REF,
# ids aside; a 200 has an id of its own
same_as_alone() {
	jq -c '{body, status, answer: (.answer | fromjson? //
		. | if type == "object" and has("message_id")
		then .message_id = "ID" else . end)}' "$1" |
		sort -u >"$1.norm"
	diff -u "$2" "$1.norm" >"$T_TMP/diff" || {
		sed 's/^/# /' "$T_TMP/diff" | head -n 20
		return 1
	}
}

# ids_200 RUN : the ids answered 200 in RUN
ids_200() {
	jq -r 'select(.status == 200) | .answer | fromjson | .message_id' "$1"
}

# rows_for_ids FILE : how many of the ids in FILE have a result row
rows_for_ids() {
	{
		echo "CREATE TEMP TABLE ids (id TEXT);"
		sed "s/.*/INSERT INTO ids VALUES ('&');/" "$1"
		echo "SELECT count(*) FROM ids JOIN results ON message_id = id;"
	} | sqlite3 -batch -noheader -cmd '.timeout 5000' "$RESULTS"
}

# all_have_rows FILE : every id of FILE has its row
all_have_rows() { [ "$(rows_for_ids "$1")" -eq "$(wc -l <"$1")" ]; }

bodies "$T_TMP/bodies"

# --- memory: answers as if alone --------------------------------------------
start_stack || bail "the memory stack did not start"
GW1_PORT=$(free_port)
GW1=http://127.0.0.1:$GW1_PORT
start_role gw1 gateway --port="$GW1_PORT" --forward-batch=1
wait_health "$GW1" 10 || bail "the FORWARD_BATCH=1 gateway did not start"

reference "$T_TMP/ref" || bail "the reference answers could not be had"
tap_note "$(wc -l <"$T_TMP/ref") distinct answers alone"
b0=$(metric "$GW" diplom_gateway_forward_batches_total)
python3 "$SENDER" "$GW/api/v1/ingest" 6 "$T_TMP/bodies" "$T_TMP/run"
b1=$(metric "$GW" diplom_gateway_forward_batches_total)
n1=$(metric "$GW" diplom_gateway_forward_batched_total)
tap_note "6 rounds of $(wc -l <"$T_TMP/bodies") at once: $((b1 - b0)) forward batches, $n1 requests in them"
tap_ok "memory: requests sent at once went to ingest in batches" \
	test "$((b1 - b0))" -gt 0 -a "$n1" -gt "$((b1 - b0))"
tap_ok "memory: every client got the answer it gets alone" \
	same_as_alone "$T_TMP/run" "$T_TMP/ref"
tap_ok "memory: no request went unanswered" \
	test "$(jq -s 'map(select(.status == 0)) | length' "$T_TMP/run")" -eq 0
ids_200 "$T_TMP/run" >"$T_TMP/ids"
tap_ok "memory: each 200 has an id of its own" \
	test "$(sort -u "$T_TMP/ids" | wc -l)" -eq "$(wc -l <"$T_TMP/ids")" -a \
	"$(wc -l <"$T_TMP/ids")" -gt 200
tap_ok "memory: every id answered 200 has its row" \
	wait_until 20 all_have_rows "$T_TMP/ids"
tap_ok "memory: a FORWARD_BATCH=1 gateway sends each alone" \
	test "$(metric "$GW1" diplom_gateway_forward_batches_total)" -eq 0

# loadgen_many : 3,000 singles at 64 connections, without keys (a keyed
# request goes alone), each recorded; the batches carried most of them
loadgen_many() {
	local n0 n1
	n0=$(metric "$GW" diplom_gateway_forward_batched_total)
	"$DIPLOM_LOADGEN" --url "$GW/api/v1/ingest" -n 3000 -c 64 \
		--no-idempotency --record "$T_TMP/sent.db" --label mem --json \
		>"$T_TMP/lg.json" 2>"$T_TMP/lg.err" || return 1
	n1=$(metric "$GW" diplom_gateway_forward_batched_total)
	tap_note "loadgen: $(jq -c '{accepted, errors, throughput}' "$T_TMP/lg.json"), $((n1 - n0)) in batches"
	[ "$(jq .accepted "$T_TMP/lg.json")" -eq 3000 ] && [ "$((n1 - n0))" -gt 0 ]
}
# recorded_rows LABEL : every id recorded under LABEL has its row
recorded_rows() {
	sql "$T_TMP/sent.db" "SELECT message_id FROM sent WHERE label = '$1'" \
		>"$T_TMP/rec-$1"
	[ -s "$T_TMP/rec-$1" ] && all_have_rows "$T_TMP/rec-$1"
}
tap_ok "memory: 3,000 singles at 64 connections are all accepted" loadgen_many
tap_ok "memory: each has its row" wait_until 30 recorded_rows mem
stop_pid "$gw1_PID"
stop_stack

# --- memory, a queue that fills: 200 only for what it holds -----------------
RESULTS=$T_TMP/small.db
QUEUE_SIZE=20 PROCESSING_DELAY_MS=50 PROCESSOR_WORKERS=1 start_stack ||
	bail "the small memory stack did not start"
python3 "$SENDER" "$GW/api/v1/ingest" 4 "$T_TMP/bodies" "$T_TMP/full"
ids_200 "$T_TMP/full" >"$T_TMP/full-ids"
full_503s() {
	jq -s -e 'map(select(.status == 503 and
		(.answer | fromjson | .error | test("full")))) | length > 0' \
		"$T_TMP/full" >/dev/null
}
tap_note "small queue: $(jq -r .status "$T_TMP/full" | sort | uniq -c | tr -s ' \n' ' ')"
tap_ok "memory, queue of 20: some requests are refused, the queue is full" \
	full_503s
tap_ok "memory, queue of 20: every 200 has its row" \
	wait_until 60 all_have_rows "$T_TMP/full-ids"
# rows_are_200s : once drained, the store holds the 200s and nothing else
rows_are_200s() {
	[ "$(sql "$RESULTS" 'SELECT count(*) FROM results')" -eq \
		"$(wc -l <"$T_TMP/full-ids")" ]
}
tap_ok "memory, queue of 20: and no refused request has one" \
	wait_until 20 rows_are_200s
stop_stack

# --- nats: a processor SIGKILLed while batches flow --------------------------
need_nats
RESULTS=$T_TMP/nats.db
start_nats || bail "nats-server did not start"
export QUEUE_TYPE=nats
start_stack || bail "the nats stack did not start"
"$DIPLOM_LOADGEN" --url "$GW/api/v1/ingest" -n 6000 -c 64 --rate 2000 \
	--no-idempotency --record "$T_TMP/sent.db" --label nats --json \
	>"$T_TMP/lg-nats.json" 2>"$T_TMP/lg-nats.err" &
LG=$!
track "$LG"
sleep 1
stop_pid "$processor_PID" KILL
start_role processor processor
wait_health "$PROC" 15
wait "$LG"
untrack "$LG"
tap_note "nats loadgen: $(jq -c '{accepted, errors, throughput}' "$T_TMP/lg-nats.json"), $(metric "$GW" diplom_gateway_forward_batched_total) in batches"
tap_ok "nats: singles at 64 connections went in batches" \
	test "$(metric "$GW" diplom_gateway_forward_batches_total)" -gt 0
tap_ok "nats: most were accepted through a processor SIGKILL" \
	test "$(jq .accepted "$T_TMP/lg-nats.json")" -gt 3000
tap_ok "nats: every accepted one has its row" \
	wait_until 60 recorded_rows nats
stop_stack
stop_nats

# bad_setting : FORWARD_BATCH=0 is a start failure naming it
bad_setting() {
	FORWARD_BATCH=0 "$DIPLOMD" --role=gateway --port="$(free_port)" \
		>"$T_TMP/bad.out" 2>&1
	[ $? -ne 0 ] && grep -q FORWARD_BATCH "$T_TMP/bad.out"
}
tap_ok "FORWARD_BATCH=0 is refused at start, naming the setting" bad_setting
tap_done
