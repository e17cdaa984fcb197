#!/bin/bash
# `make load-test`: diplom-loadgen against a local stack this script starts
# itself on free loopback ports, per backend; prints one summary table
# (backend, accepted, rejected, msg/s, p50 and p99 latency in ms).
# Asserts nothing; exit status 1 only when a run could not be made.
#   scripts/load-test.sh [memory|nats|all]     (default all)
# LOAD_N (20000) messages at LOAD_C (64) connections of LOAD_SIZE (64)
# bytes; the roles' settings come from the environment (e.g. QUEUE_SIZE).
# nats needs nats-server (one of its own on a temporary store).
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../tests/lib.sh"

N=${LOAD_N:-20000}
C=${LOAD_C:-64}
SIZE=${LOAD_SIZE:-64}
which=${1:-all}
case $which in
memory | nats | all) ;;
*) echo "usage: $0 [memory|nats|all]" >&2; exit 2 ;;
esac
command -v jq >/dev/null || { echo "load-test: jq is required" >&2; exit 2; }
[ -x "$DIPLOM_LOADGEN" ] || { echo "load-test: $DIPLOM_LOADGEN not built" >&2; exit 2; }
ROWS=""
RC=0

# row BACKEND ACCEPTED REJECTED RATE P50 P99 : one table line
row() { ROWS="$ROWS$(printf '%-8s %9s %9s %10s %9s %9s' "$@")"$'\n'; }

# load_backend BACKEND : a fresh stack on BACKEND, one loadgen run on it
load_backend() {
	local backend=$1 out=$T_TMP/$1.json
	RESULTS=$T_TMP/results-$backend.db
	if ! QUEUE_TYPE=$backend NATS_STREAM=LOADTEST start_stack >/dev/null 2>&1; then
		row "$backend" - - - - -
		echo "load-test: $backend: the stack did not start" >&2
		T_FAILED=1 RC=1
		stop_stack
		return
	fi
	echo "load-test: $backend: $N messages, $C connections, $SIZE bytes" >&2
	if ! "$DIPLOM_LOADGEN" --url "$GW/api/v1/ingest" -n "$N" -c "$C" \
		--size "$SIZE" --json >"$out" 2>"$T_TMP/loadgen-$backend.log"; then
		row "$backend" - - - - -
		echo "load-test: $backend: diplom-loadgen failed" >&2
		RC=1
	else
		# shellcheck disable=SC2046
		row "$backend" $(jq -r '.accepted, .rejected, .throughput,
			.latency_ms.p50, .latency_ms.p99' "$out")
	fi
	stop_stack
}

case $which in memory | all) load_backend memory ;; esac
case $which in
nats | all)
	if ! command -v nats-server >/dev/null 2>&1; then
		row nats - - - - -
		echo "load-test: nats: skipped, nats-server not installed" >&2
	elif start_nats; then
		load_backend nats
	else
		row nats - - - - -
		RC=1
	fi
	;;
esac
printf '%-8s %9s %9s %10s %9s %9s\n' backend accepted rejected msg/s \
	"p50 ms" "p99 ms"
printf '%s' "$ROWS"
exit "$RC"
