#!/bin/bash
# What the service manager hears (sd_notify): READY=1 once a role listens,
# a status line with the backlog and the rate, WATCHDOG=1 while its event
# loops and workers answer, STOPPING=1 when it drains; and nothing at all
# without $NOTIFY_SOCKET. A python3 listener stands in for systemd.
. "$(dirname "$0")/lib.sh"
need_tools python3 jq

"$DIPLOMD" --help >/dev/null 2>&1 || bail "diplomd does not run"
ldd "$DIPLOMD" 2>/dev/null | grep -q libsystemd ||
	tap_skip_all "built without libsystemd"

tap_plan 7

# listen SOCKET OUT : print each datagram to SOCKET on one line of OUT
listen() {
	python3 -u - "$1" >"$2" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
while True:
    print(s.recv(4096).decode().replace("\n", " | "))
PY
	LISTEN_PID=$!
	track "$LISTEN_PID"
	wait_until 5 test -S "$1"
}

sock=$T_TMP/notify.sock
out=$T_TMP/notify.out
listen "$sock" "$out" || bail "the stand-in for systemd did not start"
stack_ports
NOTIFY_SOCKET=$sock WATCHDOG_USEC=2000000 PROCESSING_DELAY_MS=5 \
	start_role processor processor
heard() { grep -q -- "$1" "$out"; }
tap_ok "READY=1 once the processor listens" wait_until 10 heard 'READY=1'
tap_ok "it answers /health by then" wait_health "$PROC" 1
for i in $(seq 20); do
	curl -s -o /dev/null -H 'Content-Type: application/json' \
		-d "{\"id\":\"n-$i\",\"payload\":\"aGk=\"}" "$PROC/enqueue"
done
tap_ok "the status line has the backlog and the rate" \
	wait_until 10 heard 'STATUS=backlog [0-9]*, [0-9]* messages/s, [0-9]* in all'
tap_ok "WATCHDOG=1 while the workers answer" wait_until 5 heard 'WATCHDOG=1'
n=$(grep -c 'WATCHDOG=1' "$out")
sleep 3
tap_ok "and again each second (watchdog 2 s)" \
	test "$(grep -c 'WATCHDOG=1' "$out")" -ge $((n + 2))
stop_pid "$processor_PID" TERM
tap_ok "STOPPING=1 when it drains" heard 'STOPPING=1'

quiet() {
	: >"$out"
	PROCESSOR_PORT=$(free_port) start_role quiet processor
	wait_until 10 grep -q 'started' "$T_TMP/quiet.log" || return 1
	sleep 1
	stop_pid "$quiet_PID" TERM
	[ ! -s "$out" ]
}
tap_ok "without NOTIFY_SOCKET nothing is sent" quiet
tap_done
