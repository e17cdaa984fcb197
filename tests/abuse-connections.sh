#!/bin/bash
# Connection slots: one client address cannot take every connection the
# gateway has, and a connection that trickles a request a byte at a time is
# closed at the request deadline, while a normal client keeps going.
. "$(dirname "$0")/lib.sh"

tap_plan 5
one_attack_at_a_time
need_loadgen
stack_ports
export REQUEST_TIMEOUT=2s
stack_roles || bail "the stack did not start"
rss_note "$gateway_PID" before

# hold N connections to the gateway from source address SRC for SECONDS
cat >"$T_TMP/hold.py" <<'PY'
import resource, socket, sys, time
n, src, port, secs = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
held = []
end = time.time() + secs
for i in range(n):
    if time.time() > end:
        break
    s = socket.socket()
    s.settimeout(0.2)
    try:
        s.bind((src, 0))
        s.connect(("127.0.0.1", port))
        held.append(s)
    except OSError:
        s.close()
print("connected", len(held), flush=True)
while time.time() < end:
    time.sleep(0.1)
PY

# 8,400 idle connections from 127.0.1.1 would fill every slot of both loops
python3 "$T_TMP/hold.py" 8400 127.0.1.1 "$GW_PORT" 12 >"$T_TMP/hold.out" &
attacker=$!
track "$attacker"
wait_until 10 grep -q connected "$T_TMP/hold.out"
tap_note "attacker: $(cat "$T_TMP/hold.out")"
normal_client_start "$GW/api/v1/ingest" 5
tap_ok "a normal client is served while one address holds its limit" \
	normal_client_ok
rss_note "$gateway_PID" during
refused() {
	local n
	n=$(curl -s "$GW/metrics" | awk '$1 == "diplom_http_connections_refused_total" { print $2 }')
	tap_note "connections refused: $n"
	[ "${n:-0}" -ge 1000 ]
}
tap_ok "the connections over the per-client limit were refused" refused
stop_pid "$attacker"

# a request sent one byte every half second never completes: cut it off
cat >"$T_TMP/trickle.py" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
t0 = time.time()
s.settimeout(0.5)
while time.time() - t0 < 8:
    try:
        s.sendall(b"a")
        if s.recv(1) == b"":
            break
    except socket.timeout:
        continue
    except OSError:
        break
print("%.1f" % (time.time() - t0))
PY
secs=$(python3 "$T_TMP/trickle.py" "$GW_PORT")
tap_note "trickled request closed after $secs s (REQUEST_TIMEOUT=2s)"
tap_ok "a trickled request is closed at the request deadline" \
	awk -v s="$secs" 'BEGIN { exit !(s < 5) }'
rss_note "$gateway_PID" after
tap_ok "the gateway is healthy after the attacks" wait_http "$GW/health" 2
rss_back_ok "the gateway gave back the attack's memory" "$RSS_after" \
	"$RSS_before"
tap_done
