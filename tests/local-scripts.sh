#!/bin/bash
# scripts/test-system.sh and scripts/integration-test.sh pass against a
# local stack, and fail when the stack is down.
. "$(dirname "$0")/lib.sh"

tap_plan 3
start_stack || bail "the stack did not start"
export GATEWAY_URL=$GW INGEST_URL=$ING PROCESSOR_URL=$PROC

test_system() { bash "$top_srcdir/scripts/test-system.sh" >"$T_TMP/ts.log"; }
integration() {
	bash "$top_srcdir/scripts/integration-test.sh" 30 >"$T_TMP/it.log"
}
tap_ok "test-system.sh passes" test_system
tap_ok "integration-test.sh passes with 30 messages" integration
stop_pid "$processor_PID" TERM
fails_when_down() {
	! bash "$top_srcdir/scripts/test-system.sh" >"$T_TMP/ts2.log" 2>&1
}
tap_ok "test-system.sh fails when the processor is down" fails_when_down
tap_done
