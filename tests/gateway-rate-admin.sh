#!/bin/bash
# RATE_LIMIT covers every endpoint that takes a key, the admin ones
# (/metrics, /api/v1/status) included, on the API port and on the admin
# listener; a wrong key costs two tokens, so guessing keys meets 429s
# twice as soon. /health stays open.
. "$(dirname "$0")/lib.sh"

need_tools curl python3
tap_plan 6

new_key() { echo "$1-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"; }
KEY_API=$(new_key api)
KEY_ADMIN=$(new_key admin)
echo "$KEY_API" >"$T_TMP/api-keys"
echo "$KEY_ADMIN" >"$T_TMP/admin-keys"

# codes URL KEY N : the statuses of N GETs of URL with KEY in a row, one a
# line
codes() {
	python3 - "$@" <<'PY'
import sys, urllib.error, urllib.request
url, key, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for _ in range(n):
    req = urllib.request.Request(url, headers={"Authorization": "Bearer " + key})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            print(r.status)
    except urllib.error.HTTPError as e:
        print(e.code)
PY
}
# count CODE FILE : how many lines of FILE are CODE
count() { grep -c "^$1\$" "$2"; }

stack_ports
start_role processor processor
wait_health "$PROC" 10 || bail "the processor did not start"
start_role ingest ingest
ADMIN_PORT=$(free_port)
API_KEYS_FILE=$T_TMP/api-keys ADMIN_KEYS_FILE=$T_TMP/admin-keys \
	RATE_LIMIT=50 RATE_BURST=50 start_role gateway gateway
wait_health "$ING" 10 && wait_health "$GW" 10 || bail "the stack did not start"

# 300 wrong admin keys in a row: 401s, then 429s
codes "$GW/metrics" wrong-key 300 >"$T_TMP/wrong"
tap_note "300 wrong admin keys: $(count 401 "$T_TMP/wrong") x 401, $(count 429 "$T_TMP/wrong") x 429"
tap_ok "300 wrong admin keys in a row meet 429s" \
	test "$(count 429 "$T_TMP/wrong")" -ge 100
tap_ok "/health is not limited" wait_http "$GW/health" 2
stop_pid "$gateway_PID"

# a burst of 10 and a token a second: five wrong keys empty the bucket
API_KEYS_FILE=$T_TMP/api-keys ADMIN_KEYS_FILE=$T_TMP/admin-keys \
	ADMIN_LISTEN_ADDRESS=127.0.0.1:$ADMIN_PORT RATE_LIMIT=1 RATE_BURST=10 \
	start_role gateway gateway
wait_health "$GW" 10 || bail "the gateway did not start again"
codes "http://127.0.0.1:$ADMIN_PORT/api/v1/status" wrong-key 10 >"$T_TMP/double"
tap_note "10 wrong keys, a burst of 10: $(count 401 "$T_TMP/double") x 401, $(count 429 "$T_TMP/double") x 429"
tap_ok "a wrong key costs two tokens: the admin listener's status answers 429 after about five" \
	test "$(count 401 "$T_TMP/double")" -le 6 -a "$(count 429 "$T_TMP/double")" -ge 4
stop_pid "$gateway_PID"

# the right key: each request costs one token, /metrics is limited too
API_KEYS_FILE=$T_TMP/api-keys ADMIN_KEYS_FILE=$T_TMP/admin-keys \
	RATE_LIMIT=1 RATE_BURST=10 start_role gateway gateway
wait_health "$GW" 10 || bail "the gateway did not start again"
codes "$GW/metrics" "$KEY_ADMIN" 20 >"$T_TMP/right"
tap_note "20 right admin keys, a burst of 10: $(count 200 "$T_TMP/right") x 200, $(count 429 "$T_TMP/right") x 429"
tap_ok "with the right key, /metrics answers the burst, then 429" \
	test "$(count 200 "$T_TMP/right")" -ge 10 -a "$(count 429 "$T_TMP/right")" -ge 5
sleep 2
code=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' \
	-H "Authorization: Bearer $KEY_API" "$GW/api/v1/messages/x")
tap_note "an API request 2 s later: $code"
tap_ok "a key's requests after a wait are let through again" \
	test "$code" != 429 -a "$code" != 401
codes "$GW/metrics" wrong-key 3 >/dev/null
code=$(curl -s --max-time 5 -D "$T_TMP/hdr" -o /dev/null -w '%{http_code}' \
	-H "Authorization: Bearer wrong-key" "$GW/metrics")
tap_ok "the 429 carries Retry-After" \
	sh -c "test '$code' = 429 && grep -qi '^Retry-After: [0-9]' '$T_TMP/hdr'"
tap_done
