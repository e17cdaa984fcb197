#!/bin/bash
# HTTP that matters for safety, on every role: two different Content-Length
# headers (request smuggling behind a proxy) and HTTP/1.1 without Host are
# 400; HEAD works on every GET route and sends no body.
. "$(dirname "$0")/lib.sh"

start_stack || bail "the stack did not start"

# raw PORT REQUEST : send REQUEST as it is, print the status line
raw() {
	python3 - "$1" "$2" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))
print(s.recv(4096).split(b"\r\n")[0].decode())
PY
}

for role in gateway:$GW_PORT:/api/v1/ingest ingest:$ING_PORT:/ingest \
	processor:$PROC_PORT:/enqueue; do
	IFS=: read -r name port path <<<"$role"
	smuggle="POST $path HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\nContent-Length: 40\r\n\r\n{\"data\":\"x\"}"
	tap_ok "$name: two different Content-Length headers are 400" \
		grep -q ' 400 ' <<<"$(raw "$port" "$smuggle")"
	nohost='GET /health HTTP/1.1\r\n\r\n'
	tap_ok "$name: HTTP/1.1 without Host is 400" \
		grep -q ' 400 ' <<<"$(raw "$port" "$nohost")"
	tap_ok "$name: HTTP/1.0 without Host is served" \
		grep -q ' 200 ' <<<"$(raw "$port" 'GET /health HTTP/1.0\r\n\r\n')"
done

# head_ok URL : HEAD answers the GET status with headers and no body
head_ok() {
	local get head len
	get=$(curl -s -o /dev/null -w '%{http_code}' "$1")
	head=$(curl -s -I -o "$T_TMP/head" -w '%{http_code} %{size_download}' "$1")
	len=$(curl -s -I "$1" | tr -d '\r' | awk -F': ' 'tolower($1) == "content-length" { print $2 }')
	[ "$head" = "$get 0" ] && [ -n "$len" ]
}
id=$(post_json "$GW/api/v1/ingest" '{"data":"head"}' | sed 's/^200 //' | jq -r .message_id)
wait_until 5 test "$(curl -s -o /dev/null -w '%{http_code}' "$GW/api/v1/messages/$id")" = 200
for url in "$GW/health" "$GW/metrics" "$GW/api/v1/status" \
	"$GW/api/v1/messages/$id" "$ING/health" "$ING/stats" "$ING/metrics" \
	"$PROC/health" "$PROC/stats" "$PROC/metrics" "$PROC/results/$id"; do
	path=/${url#http://127.0.0.1:*/}
	case ${url#http://127.0.0.1:} in
	"$GW_PORT"/*) name=gateway ;; "$ING_PORT"/*) name=ingest ;; *) name=processor ;;
	esac
	tap_ok "$name: HEAD ${path/$id/ID} is the GET without a body" \
		head_ok "$url"
done
allow_ok() {
	curl -s -X DELETE -D - -o /dev/null "$GW/health" | tr -d '\r' |
		grep -qx 'Allow: GET, HEAD'
}
tap_ok "405 on a GET route allows GET and HEAD" allow_ok
tap_ok "the roles are healthy" wait_http "$GW/health" 2
tap_plan "$T_N"
tap_done
