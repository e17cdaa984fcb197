#!/bin/bash
# Throughput and latency through the gateway, on this machine, against a
# stack of our own on free loopback ports. Prints figures; asserts nothing.
#   scripts/bench.sh [memory|nats|all]   (default: all; nats needs nats-server)
# BENCH_N (10000) messages at BENCH_C (16) connections with ab, then
# BENCH_SECS (10) seconds at 64 connections with wrk.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../tests/lib.sh"

N=${BENCH_N:-10000}
C=${BENCH_C:-16}
SECS=${BENCH_SECS:-10}
which=${1:-all}
body=$T_TMP/body.json
printf '{"source":"bench","data":"%s","metadata":{"k":"v"}}' \
	"$(head -c 100 /dev/zero | tr '\0' x)" >"$body"
cat >"$T_TMP/post.lua" <<EOF2
wrk.method = "POST"
wrk.body = io.open("$body"):read("*a")
wrk.headers["Content-Type"] = "application/json"
EOF2

bench_backend() {
	local backend=$1 rps p50 p99 ok
	RESULTS=$T_TMP/results-$backend.db
	QUEUE_TYPE=$backend QUEUE_SIZE=1000000 start_stack >/dev/null ||
		{ echo "$backend: the stack did not start"; return 1; }
	ab -q -k -n "$N" -c "$C" -p "$body" -T application/json \
		"$GW/api/v1/ingest" >"$T_TMP/ab.out" 2>&1
	rps=$(awk '/Requests per second/ {print $4}' "$T_TMP/ab.out")
	ok=$(awk '/Complete requests/ {c=$3} /Non-2xx/ {n=$3} END {print c-n}' "$T_TMP/ab.out")
	p50=$(awk '$1 == "50%" {print $2}' "$T_TMP/ab.out")
	p99=$(awk '$1 == "99%" {print $2}' "$T_TMP/ab.out")
	printf '%-7s ab  n=%-6s c=%-3s %9s req/s  p50 %s ms  p99 %s ms  (%s accepted)\n' \
		"$backend" "$N" "$C" "$rps" "$p50" "$p99" "$ok"
	wrk -t2 -c64 -d"${SECS}s" --latency -s "$T_TMP/post.lua" \
		"$GW/api/v1/ingest" >"$T_TMP/wrk.out" 2>&1
	rps=$(awk '/Requests\/sec/ {print $2}' "$T_TMP/wrk.out")
	p50=$(awk '$1 == "50%" {print $2}' "$T_TMP/wrk.out")
	p99=$(awk '$1 == "99%" {print $2}' "$T_TMP/wrk.out")
	printf '%-7s wrk %-2ss     c=64  %9s req/s  p50 %s  p99 %s  %s\n' \
		"$backend" "$SECS" "$rps" "$p50" "$p99" \
		"$(grep -h 'Non-2xx' "$T_TMP/wrk.out")"
	stop_stack
}

echo "# $(nproc) cores, $(uname -r), diplomd $("$DIPLOMD" --version | awk '{print $2}')"
case $which in
memory | all) bench_backend memory ;;
esac
case $which in
nats | all)
	if command -v nats-server >/dev/null; then
		start_nats >/dev/null && bench_backend nats
	else
		echo "nats: nats-server not installed, skipped"
	fi
	;;
esac
