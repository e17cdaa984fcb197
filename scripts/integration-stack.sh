#!/bin/bash
# `make integration-test`: scripts/integration-test.sh against stacks this
# script starts itself on free loopback ports (tests/lib.sh start_stack):
# first the memory backend, then nats (with a nats-server of its own on a
# temporary store; skipped when nats-server is not installed, unless
# DIPLOM_REQUIRE_NATS=1).
#   scripts/integration-stack.sh [COUNT]    (COUNT messages each, default 50)
# Exit status 0 when every backend run passed.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../tests/lib.sh"

N=${1:-50}
SUMMARY=""
RC=0

# run_backend BACKEND : a fresh stack on BACKEND, integration-test.sh on it
run_backend() {
	local backend=$1 rc
	echo "== $backend"
	RESULTS=$T_TMP/results-$backend.db
	if ! QUEUE_TYPE=$backend NATS_STREAM=INTEGRATION start_stack; then
		echo "$backend: the stack did not start"
		T_FAILED=1
		SUMMARY="$SUMMARY$backend: FAIL (the stack did not start)"$'\n'
		RC=1
		stop_stack
		return
	fi
	GATEWAY_URL=$GW PROCESSOR_URL=$PROC \
		bash "$top_srcdir/scripts/integration-test.sh" "$N"
	rc=$?
	stop_stack
	if [ "$rc" -eq 0 ]; then
		SUMMARY="$SUMMARY$backend: OK"$'\n'
	else
		SUMMARY="$SUMMARY$backend: FAIL"$'\n'
		T_FAILED=1
		RC=1
	fi
}

run_backend memory
if command -v nats-server >/dev/null 2>&1; then
	if start_nats; then
		run_backend nats
	else
		SUMMARY="${SUMMARY}nats: FAIL (nats-server did not start)"$'\n'
		T_FAILED=1
		RC=1
	fi
elif [ "${DIPLOM_REQUIRE_NATS:-0}" = 1 ]; then
	SUMMARY="${SUMMARY}nats: FAIL (nats-server not installed, DIPLOM_REQUIRE_NATS=1)"$'\n'
	RC=1
else
	SUMMARY="${SUMMARY}nats: skipped (nats-server not installed)"$'\n'
fi
echo "== summary"
printf '%s' "$SUMMARY"
exit "$RC"
