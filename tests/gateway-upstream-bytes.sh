#!/bin/bash
# The gateway passes the next hop's answer back byte for byte: a body that
# holds a NUL is sent whole, and nothing past its end (heap bytes) follows.
. "$(dirname "$0")/lib.sh"

tap_plan 3
stack_ports

# A fake ingest whose answer to POST /ingest holds a NUL byte.
cat >"$T_TMP/upstream.py" <<'PY'
import http.server, sys

BODY = b'{"message_id":"a\x00b","status":"accepted"}'

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *a):
        pass

http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
python3 "$T_TMP/upstream.py" "$ING_PORT" &
track $!
wait_http "$ING/health" 10 || bail "the fake upstream did not start"
start_role gateway gateway
wait_http "$GW/health" 10 || bail "the gateway did not start"

curl -s -o "$T_TMP/body" -D "$T_TMP/hdr" --max-time 5 \
	-H 'Content-Type: application/json' -d '{"data":"x"}' \
	"$GW/api/v1/ingest"
printf '{"message_id":"a\000b","status":"accepted"}' >"$T_TMP/want"

tap_ok "the answer is the upstream's bytes, NUL included" \
	cmp -s "$T_TMP/body" "$T_TMP/want"
same_length() {
	grep -qi "^Content-Length: $(wc -c <"$T_TMP/want")" "$T_TMP/hdr"
}
tap_ok "Content-Length counts the bytes after the NUL" same_length
tap_ok "the gateway is still healthy" wait_http "$GW/health" 2
tap_done
