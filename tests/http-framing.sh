#!/bin/bash
# Strict HTTP framing on every role, so that a proxy in front and diplomd
# never read one byte stream as two different sets of requests (request
# smuggling): Content-Length with Transfer-Encoding, two Host headers, a
# blank before the colon, a header continued on the next line (obs-fold)
# and a bare CR are 400; a transfer coding other than chunked is 501 at
# once. Each answer closes the connection, so a request sent after it on
# the same connection is never answered. Header values lose the blanks
# around them the same way everywhere: one Idempotency-Key, one id, as a
# header or a batch item.
. "$(dirname "$0")/lib.sh"

need_tools python3 curl jq

start_stack || bail "the stack did not start"

# send PORT REQUEST : write REQUEST (with \r \n escapes) on a new connection
# and read until the server closes it (5 s at most); print every status
# code answered and "closed" or "open"
send() {
	python3 - "$1" "$2" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))
buf, state = b"", "open"
try:
    while True:
        d = s.recv(65536)
        if not d:
            state = "closed"
            break
        buf += d
except (socket.timeout, ConnectionResetError):
    pass
codes = [l.split(b" ")[1].decode() for l in buf.split(b"\r\n")
         if l.startswith(b"HTTP/1.")]
print(" ".join(codes + [state]))
PY
}

# expect WANT PORT REQUEST : the answer is exactly WANT ("400 closed")
expect() {
	local got
	got=$(send "$2" "$3")
	[ "$got" = "$1" ] || { echo "# got '$got', want '$1'" >&2; return 1; }
}

B='{"data":"x"}'
H='Host: x\r\nContent-Type: application/json'
# the request a front proxy would see as the second one on the connection
NEXT='GET /health HTTP/1.1\r\nHost: x\r\n\r\n'
for role in gateway:$GW_PORT:/api/v1/ingest ingest:$ING_PORT:/ingest \
	processor:$PROC_PORT:/enqueue; do
	IFS=: read -r name port path <<<"$role"
	body=$B
	[ "$name" = processor ] && body='{"id":"f-1","payload":"eA=="}'
	n=$(printf %x "${#body}")
	chunked="$n\r\n$body\r\n0\r\n\r\n"
	tap_ok "$name: Content-Length with Transfer-Encoding is 400 and closes" \
		expect "400 closed" "$port" "POST $path HTTP/1.1\r\n$H\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n$chunked$NEXT"
	tap_ok "$name: two Host headers are 400 and close" \
		expect "400 closed" "$port" "GET /health HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n$NEXT"
	tap_ok "$name: a blank before the colon is 400 and closes" \
		expect "400 closed" "$port" "GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n$NEXT"
	tap_ok "$name: a header folded onto the next line is 400 and closes" \
		expect "400 closed" "$port" "GET /health HTTP/1.1\r\nHost: x\r\nX-Note: a\r\n b\r\n\r\n$NEXT"
	tap_ok "$name: a bare CR in a header value is 400 and closes" \
		expect "400 closed" "$port" "GET /health HTTP/1.1\r\nHost: x\r\nX-Note: a\rb\r\n\r\n$NEXT"
	for te in identity xchunked 'chunked, identity' 'chunked '; do
		tap_ok "$name: Transfer-Encoding '$te' is 501 at once and closes" \
			expect "501 closed" "$port" "POST $path HTTP/1.1\r\n$H\r\nTransfer-Encoding: $te\r\n\r\n$body"
	done
	tap_ok "$name: chunked alone is served, the connection kept" \
		expect "$([ "$name" = processor ] && echo 202 || echo 200) open" \
		"$port" "POST $path HTTP/1.1\r\n$H\r\nTransfer-Encoding: chunked\r\n\r\n$chunked"
	tap_ok "$name: blanks after a value are no framing error" \
		expect "200 open" "$port" "GET /health HTTP/1.1\r\nHost: x \r\nX-Note:  a b \t\r\n\r\n"
done

# id_of REQUEST : the message_id of the gateway's answer to REQUEST
id_of() {
	python3 - "$GW_PORT" "$1" <<'PY'
import json, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))
buf = b""
while b"\r\n\r\n" not in buf or not buf.rstrip().endswith(b"}"):
    d = s.recv(65536)
    if not d:
        break
    buf += d
print(json.loads(buf.split(b"\r\n\r\n", 1)[1])["message_id"])
PY
}
keyed() {
	id_of "POST /api/v1/ingest HTTP/1.1\r\n$H\r\nIdempotency-Key: $1\r\nContent-Length: ${#B}\r\n\r\n$B"
}
one_key_one_id() {
	local a b c d
	a=$(keyed 'trim-1') && b=$(keyed 'trim-1  ') && c=$(keyed '  trim-1 \t') &&
	d=$(curl -s -H 'Content-Type: application/json' --data-binary \
		'[{"data":"x","idempotency_key":" trim-1 "}]' \
		"$GW/api/v1/ingest/batch" | jq -r '.items[0].message_id') &&
	echo "# ids: $a $b $c $d" &&
	[ -n "$a" ] && [ "$a" = "$b" ] && [ "$a" = "$c" ] && [ "$a" = "$d" ]
}
tap_ok "an Idempotency-Key with blanks around it, header or batch item, is one id" \
	one_key_one_id
tap_ok "the roles are healthy" wait_http "$GW/health" 2
tap_plan "$T_N"
tap_done
