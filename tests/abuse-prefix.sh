#!/bin/bash
# Connection slots by prefix: many addresses of one /24 together hold at
# most MAX_PREFIX_CONNECTIONS, so a client from another prefix is served;
# and when idle connections from many prefixes bring a loop near its
# connection limit, those that have sent no request for a while are closed
# early, not at REQUEST_TIMEOUT, so a normal client is served then too.
# 127.0.0.0/8 is all local: 127.0.N.M need no setup.
. "$(dirname "$0")/lib.sh"

tap_plan 6
one_attack_at_a_time
need_loadgen
start_stack || bail "the stack did not start"

# hold N connections to the gateway from each source address given, for
# SECONDS; connect errors and refusals end in nothing held
cat >"$T_TMP/hold.py" <<'PY'
import resource, socket, sys, time
n, port, secs, srcs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
held = []
end = time.time() + secs
for src in srcs:
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
print("connected", len(held), "from", len(srcs), "addresses", flush=True)
while time.time() < end:
    time.sleep(0.1)
PY
metric() {
	curl -s "$GW/metrics" | awk -v k="$1" '$1 == k { print $2 }'
}

# enough addresses of 1,000 connections each to fill every loop's 4,096
loops=$(nproc)
[ "$loops" -gt 16 ] && loops=16
naddr=$((loops * 4096 / 1000 + 1))
# file descriptors for the attacker and the gateway: 18,000 at most, which
# fills four loops
fills=yes
if [ "$naddr" -gt 18 ]; then
	naddr=18
	fills=no
fi
tap_note "$loops loops of 4096 connections: $naddr addresses x 1000"

# one /24: 127.0.1.1, 127.0.1.2, ...
srcs=$(seq -f '127.0.1.%g' 1 "$naddr")
# shellcheck disable=SC2086
python3 "$T_TMP/hold.py" 1000 "$GW_PORT" 15 $srcs >"$T_TMP/one.out" &
attacker=$!
track "$attacker"
wait_until 20 grep -q connected "$T_TMP/one.out"
tap_note "one /24: $(cat "$T_TMP/one.out")"
normal_client_start "$GW/api/v1/ingest" 5
tap_ok "a client of another prefix is served while one /24 holds its limit" \
	normal_client_ok
refused=$(metric diplom_http_connections_refused_total)
tap_note "connections refused: $refused"
tap_ok "the /24's connections past MAX_PREFIX_CONNECTIONS were refused" \
	test "${refused:-0}" -ge $((naddr * 1000 - 2048 - 1024))
stop_pid "$attacker"
untrack "$attacker"
sleep 1

# as many addresses, each of its own /24: 127.0.11.1, 127.0.12.1, ...
srcs=$(seq -f '127.0.%g.1' 11 $((10 + naddr)))
# shellcheck disable=SC2086
python3 "$T_TMP/hold.py" 1000 "$GW_PORT" 15 $srcs >"$T_TMP/many.out" &
attacker=$!
track "$attacker"
wait_until 20 grep -q connected "$T_TMP/many.out"
tap_note "$naddr prefixes: $(cat "$T_TMP/many.out")"
# the loops are near their limit: idle connections are closed early
sleep 3
normal_client_start "$GW/api/v1/ingest" 5
tap_ok "a normal client is served while idle connections of many prefixes fill the loops" \
	normal_client_ok
reaped=$(metric diplom_http_connections_reaped_total)
tap_note "connections closed early: $reaped"
if [ "$fills" = yes ]; then
	tap_ok "idle connections were closed early, near the connection limit" \
		test "${reaped:-0}" -ge 1000
else
	tap_skip "idle connections were closed early, near the connection limit" \
		"$loops loops take more connections than the test may open"
fi
stop_pid "$attacker"
tap_ok "the gateway is healthy after the attacks" wait_http "$GW/health" 2
tap_ok "no connection was cut off at the request deadline" \
	test "$(metric diplom_http_request_timeouts_total)" = 0
tap_done
