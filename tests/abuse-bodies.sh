#!/bin/bash
# What a body may hold: a request that the first hop accepts is never
# refused by a later hop for its size (ingest's encoding makes it a third
# larger); over the limit is 413 from the first hop, naming the limit; and
# metadata over its limits is 400 naming the limit, at little cost, while
# a normal client keeps going.
. "$(dirname "$0")/lib.sh"

tap_plan 7
one_attack_at_a_time
need_loadgen
start_stack || bail "the stack did not start"
rss_note "$ingest_PID" before

# body FILE DATA_BYTES : an ingest request whose data has DATA_BYTES bytes
body() {
	python3 -c 'import sys; sys.stdout.write("{\"data\":\"" + "a" * int(sys.argv[1]) + "\"}")' "$2" >"$1"
}
# post FILE : the gateway's status and answer for the body in FILE
post() {
	curl -s -o "$T_TMP/out" -w '%{http_code}' --max-time 10 \
		-H 'Content-Type: application/json' --data-binary @"$1" \
		"$GW/api/v1/ingest"
}

limit=1048576
body "$T_TMP/max.json" $((limit - 11))
code=$(post "$T_TMP/max.json")
tap_note "a body of exactly $limit bytes: $code $(head -c 200 "$T_TMP/out")"
tap_ok "a body of MAX_BODY_BYTES passes every hop" test "$code" = 200
id=$(jq -r .message_id "$T_TMP/out" 2>/dev/null)
tap_ok "and is processed" wait_until 10 test "$(curl -s -o /dev/null -w '%{http_code}' "$GW/api/v1/messages/$id")" = 200

body "$T_TMP/over.json" $((limit - 10))
code=$(post "$T_TMP/over.json")
over_ok() {
	[ "$code" = 413 ] && jq -e --arg n "$limit" '.error | contains($n)' \
		"$T_TMP/out" >/dev/null
}
tap_ok "one byte more is 413 from the gateway, naming the limit" over_ok

# 85,000 metadata keys, short enough to fit in the body limit
python3 - "$T_TMP/meta.json" <<'PY'
import json, sys
def key(i):
    s = ""
    while True:
        s += "abcdefghijklmnopqrstuvwxyz0123456789"[i % 36]
        i //= 36
        if i == 0:
            return s
meta = {key(i): "" for i in range(85000)}
open(sys.argv[1], "w").write(json.dumps({"data": "x", "metadata": meta}, separators=(",", ":")))
PY
normal_client_start "$GW/api/v1/ingest" 5
for _ in 1 2 3 4 5 6 7 8 9 10; do
	curl -s -o "$T_TMP/meta.out" -w '%{http_code} %{time_total}\n' \
		--max-time 10 -H 'Content-Type: application/json' \
		--data-binary @"$T_TMP/meta.json" "$GW/api/v1/ingest" \
		>>"$T_TMP/meta.codes"
	sleep 0.3
done
tap_note "85,000 keys: $(sort "$T_TMP/meta.codes" | awk '{ print $1 }' | uniq -c | tr -s ' \n' ' ')"
meta_ok() {
	! grep -qv '^400 ' "$T_TMP/meta.codes" &&
		jq -e '.error | contains("MAX_METADATA_KEYS")' "$T_TMP/meta.out" >/dev/null
}
tap_ok "85,000 metadata keys are 400 naming the limit" meta_ok
tap_ok "a normal client is served meanwhile" normal_client_ok
rss_note "$ingest_PID" after
rss_back_ok "ingest holds no memory for them" "$RSS_after" "$RSS_before"
tap_ok "the roles are healthy" wait_http "$GW/health" 2
tap_done
