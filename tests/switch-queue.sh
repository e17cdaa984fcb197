#!/bin/bash
# scripts/switch-queue.sh on a scripts/run-local.sh stack (free ports, run
# directory under the test's temporary directory): messages keep coming
# (diplom-loadgen --retry) while the stack switches memory -> nats -> memory;
# every accepted id is processed, the gateway is never restarted, and
# run-local.sh still stops the roles the switch started.
. "$(dirname "$0")/lib.sh"
need_nats
need_tools jq sqlite3
need_loadgen

SWITCH=$top_srcdir/scripts/switch-queue.sh
RUN=$T_TMP/run
SENT=$T_TMP/sent.db
N=3000

tap_plan 14

no_stack() {
	DIPLOM_RUN_DIR=$T_TMP/none bash "$SWITCH" nats >/dev/null 2>&1
	[ $? -eq 1 ]
}
tap_ok "switch-queue.sh without a stack fails (exit 1)" no_stack
usage_error() {
	bash "$SWITCH" kafka >/dev/null 2>&1
	[ $? -eq 2 ]
}
tap_ok "an unknown backend is a usage error (exit 2)" usage_error

start_nats || bail "nats-server did not start"
RESULTS=$RUN/results.db		# where run-local.sh keeps them
stack_ports
export QUEUE_TYPE=memory QUEUE_SIZE=5000 PROCESSING_DELAY_MS=10 \
	DIPLOM_RUN_DIR=$RUN DIPLOMD
# DIPLOMD set: run-local.sh uses that build and does not build or install
bash "$top_srcdir/scripts/run-local.sh" >"$T_TMP/run-local.log" 2>&1 &
RUN_LOCAL_PID=$!
track "$RUN_LOCAL_PID"
if ! wait_http "$PROC/health" 15 || ! wait_http "$ING/health" 15 ||
	! wait_http "$GW/health" 15; then
	bail "run-local.sh did not start the stack"
fi
gw_pid=$(cat "$RUN/gateway.pid")

# accepted_at_least N : diplom-loadgen has recorded N ids or more
accepted_at_least() { [ "$(sent_count "$SENT")" -ge "$1" ]; }
# runs_on ROLE TYPE : the role's current process has QUEUE_TYPE=TYPE
runs_on() {
	tr '\0' '\n' <"/proc/$(cat "$RUN/$1.pid")/environ" 2>/dev/null |
		grep -qx "QUEUE_TYPE=$2"
}
# switch_to TYPE : run switch-queue.sh; track the roles it started
switch_to() {
	bash "$SWITCH" "$1" >"$T_TMP/switch-$1.out" 2>"$T_TMP/switch-$1.log"
	local rc=$?
	sed 's/^/# /' "$T_TMP/switch-$1.out"
	track "$(cat "$RUN/processor.pid")"
	track "$(cat "$RUN/ingest.pid")"
	if [ "$rc" -eq 0 ] && [ "$(grep -c ' 200 ' "$T_TMP/switch-$1.out")" -eq 3 ]; then
		return 0
	fi
	# a stack left without ingest would keep the loadgen retrying for
	# minutes: end it now (SIGINT: it stops, flushes and summarizes)
	kill -INT "$lg_pid" 2>/dev/null
	return 1
}

"$DIPLOM_LOADGEN" --url "$GW/api/v1/ingest" -n "$N" -c 8 --rate 250 \
	--retry 30 --record "$SENT" --label switch --json \
	>"$T_TMP/loadgen.out" 2>"$T_TMP/loadgen.log" &
lg_pid=$!
track "$lg_pid"

wait_until 20 accepted_at_least 200
refused_without_broker() {
	! NATS_URL=nats://127.0.0.1:1 bash "$SWITCH" nats 2>/dev/null &&
		runs_on ingest memory && runs_on processor memory
}
tap_ok "refused without a reachable broker, nothing stopped" \
	refused_without_broker
tap_ok "switch to nats under load: exit 0, every role healthy" switch_to nats
both_on() { runs_on ingest "$1" && runs_on processor "$1"; }
tap_ok "ingest and processor now run with QUEUE_TYPE=nats" both_on nats
at_nats=$(sent_count "$SENT")
wait_until 20 accepted_at_least $((at_nats + 200))
tap_ok "switch back to memory under load: exit 0, every role healthy" \
	switch_to memory
kill -0 "$lg_pid" 2>/dev/null
still_loading=$?
tap_ok "ingest and processor run with QUEUE_TYPE=memory again" \
	both_on memory

wait "$lg_pid"
lg_rc=$?
untrack "$lg_pid"
sed 's/^/# loadgen: /' "$T_TMP/loadgen.out"
tap_ok "diplom-loadgen ran through both switches (exit 0)" test "$lg_rc" -eq 0
tap_ok "the load was still running when the second switch ended" \
	test "$still_loading" -eq 0
tap_ok "all $N messages accepted (retried through the ingest restarts)" \
	test "$(sent_count "$SENT")" -eq "$N"
none_missing() {
	[ "$(sql "$SENT" "ATTACH '$RESULTS' AS r;
		SELECT count(*) FROM sent
		WHERE message_id NOT IN (SELECT message_id FROM r.results)" \
		2>/dev/null)" = 0 ]
}
tap_ok "every accepted id has a result row" wait_until 30 none_missing
same_gateway() {
	[ "$(cat "$RUN/gateway.pid")" = "$gw_pid" ] && kill -0 "$gw_pid"
}
tap_ok "the gateway was never restarted" same_gateway

roles_gone() {
	local p
	for p in $(cat "$RUN"/*.pid 2>/dev/null) $procs; do
		kill -0 "$p" 2>/dev/null && return 1
	done
	return 0
}
procs="$(cat "$RUN"/*.pid)"
stop_pid "$RUN_LOCAL_PID" TERM
tap_ok "run-local.sh exits on SIGTERM" test "$STOP_RC" -ne 127
tap_ok "and stops every role, the switched ones included" wait_until 10 roles_gone
tap_done
