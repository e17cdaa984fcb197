#!/bin/bash
# Memory held by stalled uploads: bodies being received share a bounded
# amount of memory (BODY_MEMORY); past it a new upload is answered 503 with
# Retry-After, and the memory goes back when the uploads end. A normal
# client keeps going meanwhile.
. "$(dirname "$0")/lib.sh"

tap_plan 5
one_attack_at_a_time
need_loadgen
start_stack || bail "the stack did not start"
rss_note "$gateway_PID" before

# N uploads that declare 1,000,000 bytes, send 900,000 and stall
cat >"$T_TMP/stall.py" <<'PY'
import socket, sys, time
n, port, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
head = (b"POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n")
socks, busy = [], 0
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(head)
    s.settimeout(0.05)
    try:
        s.sendall(b'{"data":"' + b"a" * 899990)
    except OSError:
        pass
    try:
        if s.recv(64).startswith(b"HTTP/1.1 503"):
            busy += 1
    except OSError:
        pass
    socks.append(s)
print("stalled", n, "busy", busy, flush=True)
time.sleep(secs)
PY
python3 "$T_TMP/stall.py" 400 "$GW_PORT" 6 >"$T_TMP/stall.out" &
attacker=$!
track "$attacker"
normal_client_start "$GW/api/v1/ingest" 5
wait_until 20 grep -q stalled "$T_TMP/stall.out"
rss_note "$gateway_PID" during
tap_note "attacker: $(cat "$T_TMP/stall.out")"
tap_ok "a normal client is served while 400 uploads stall" normal_client_ok
tap_ok "the stalled uploads hold a bounded amount of memory" \
	test "$RSS_during" -lt $((RSS_before + 160 * 1024))
refused() {
	local n
	n=$(curl -s "$GW/metrics" | awk '$1 == "diplom_http_bodies_refused_total" { print $2 }')
	tap_note "uploads answered 503: $n"
	[ "${n:-0}" -ge 100 ]
}
tap_ok "uploads past the body memory were answered 503" refused
stop_pid "$attacker"
sleep 1
rss_note "$gateway_PID" after
rss_back_ok "the memory went back when the uploads ended" \
	"$RSS_after" "$RSS_before"
tap_ok "the gateway is healthy" wait_http "$GW/health" 2
tap_done
