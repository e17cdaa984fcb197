#!/bin/bash
# Bad input gets a clear error with the right status, and every daemon
# stays healthy.
. "$(dirname "$0")/lib.sh"

tap_plan 16
MAX_BODY_BYTES=4096 start_stack || bail "the stack did not start"

# expect STATUS METHOD URL [BODY] : status and a JSON {"error": ...} body
expect() {
	local want=$1 method=$2 url=$3 body=${4-} code
	if [ -n "$body" ]; then
		code=$(curl -s -o "$T_TMP/out" -D "$T_TMP/hdr" -w '%{http_code}' \
			-X "$method" -H 'Content-Type: application/json' \
			--data-binary "$body" "$url")
	else
		code=$(curl -s -o "$T_TMP/out" -D "$T_TMP/hdr" -w '%{http_code}' \
			-X "$method" "$url")
	fi
	[ "$code" = "$want" ] || { echo "# $method $url: $code, want $want" >&2; return 1; }
	[ "$want" -lt 400 ] || jq -e '.error | type == "string"' "$T_TMP/out" >/dev/null
}

tap_ok "malformed JSON is 400" expect 400 POST "$GW/api/v1/ingest" '{"source":'
tap_ok "trailing garbage is 400" expect 400 POST "$GW/api/v1/ingest" '{"data":"x"} zz'
tap_ok "a non-object body is 400" expect 400 POST "$GW/api/v1/ingest" '[1,2]'
tap_ok "a number for source is 400" expect 400 POST "$GW/api/v1/ingest" '{"source":1}'
tap_ok "metadata of numbers is 400" expect 400 POST "$GW/api/v1/ingest" \
	'{"data":"x","metadata":{"a":1}}'
tap_ok "bad base64 at /enqueue is 400" expect 400 POST "$PROC/enqueue" \
	'{"id":"x","payload":"***"}'
tap_ok "a message without id at /enqueue is 400" expect 400 POST \
	"$PROC/enqueue" '{"payload":"aGk="}'
tap_ok "GET on the ingest endpoint is 405" expect 405 GET "$GW/api/v1/ingest"
tap_ok "405 carries Allow: POST" grep -qi '^Allow: POST' "$T_TMP/hdr"
tap_ok "an unknown path is 404" expect 404 GET "$GW/no/such/path"
big=$(head -c 6000 /dev/zero | tr '\0' a)
tap_ok "a body above MAX_BODY_BYTES is 413" expect 413 POST \
	"$GW/api/v1/ingest" "{\"data\":\"$big\"}"
tap_ok "the same straight to ingest is 413" expect 413 POST \
	"$ING/ingest" "{\"data\":\"$big\"}"

garbage() {
	local port
	for port in "$GW_PORT" "$ING_PORT" "$PROC_PORT"; do
		printf 'GARBAGE \x01\x02\x03 nonsense\r\n\r\n' |
			timeout 3 bash -c "cat >/dev/tcp/127.0.0.1/$port" 2>/dev/null
		head -c 3000 /dev/urandom |
			timeout 3 bash -c "cat >/dev/tcp/127.0.0.1/$port" 2>/dev/null
	done
	return 0
}
garbage
all_healthy() {
	wait_http "$GW/health" 3 && wait_http "$ING/health" 3 &&
		wait_http "$PROC/health" 3
}
tap_ok "after garbage on the sockets every daemon is healthy" all_healthy

still_works() {
	local out
	out=$(post_json "$GW/api/v1/ingest" '{"source":"ok","data":"after"}')
	[ "${out%% *}" = 200 ]
}
tap_ok "messages still flow after bad input" still_works

alive() {
	kill -0 "$gateway_PID" && kill -0 "$ingest_PID" && kill -0 "$processor_PID"
}
tap_ok "no daemon exited" alive

binary_payload() {
	local id=bin-$$ body
	# ff fe is not UTF-8: the result must come back as base64
	expect 202 POST "$PROC/enqueue" "{\"id\":\"$id\",\"payload\":\"//4=\"}" &&
	wait_until 5 eval "curl -sf '$PROC/results/$id' >'$T_TMP/bin'" &&
	[ "$(jq -r .result_encoding "$T_TMP/bin")" = base64 ] &&
	[ "$(jq -r .result "$T_TMP/bin" | base64 -d | tail -c 2 | od -An -tx1 | tr -d ' ')" = fffe ]
}
tap_ok "a binary payload's result is valid JSON, base64-encoded" binary_payload
tap_done
