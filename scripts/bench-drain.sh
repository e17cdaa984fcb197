#!/bin/bash
# How fast the processor drains a NATS backlog, and its peak memory:
# publish BENCH_BACKLOG (100000) messages with the processor down, start
# it, time until all are processed. Prints figures; asserts nothing.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../tests/lib.sh"

N=${BENCH_BACKLOG:-100000}
command -v nats-server >/dev/null || { echo "nats-server not installed"; exit 1; }
start_nats >/dev/null || exit 1
ING_PORT=$(free_port); PROC_PORT=$(free_port)
export QUEUE_TYPE=nats NATS_MAX_MSGS=-1 RESULTS_DB=$T_TMP/results.db \
	PROCESSOR_URL=http://127.0.0.1:$PROC_PORT
start_role ingest ingest --port="$ING_PORT"
wait_http "http://127.0.0.1:$ING_PORT/health" 10 || exit 1
printf '{"source":"drain","data":"%s"}' "$(head -c 100 /dev/zero | tr '\0' x)" \
	>"$T_TMP/body.json"
ab -q -k -n "$N" -c 64 -p "$T_TMP/body.json" -T application/json \
	"http://127.0.0.1:$ING_PORT/ingest" >"$T_TMP/ab.out" 2>&1
echo "published $N: $(awk '/Requests per second/ {print $4}' "$T_TMP/ab.out") msg/s," \
	"$(awk '/Non-2xx/ {print $3}' "$T_TMP/ab.out")${NULL:-} non-2xx"
# shellcheck disable=SC2154 # start_role sets it
stop_pid "$ingest_PID" TERM

# processed so far, 0 while the processor is not answering yet
processed() {
	local n
	n=$(curl -s "http://127.0.0.1:$PROC_PORT/stats" |
		jq -r '.pool.ProcessedCount // 0' 2>/dev/null)
	echo "${n:-0}"
}
t0=$(date +%s%N)
start_role processor processor --port="$PROC_PORT"
until [ "$(processed)" -gt 0 ]; do sleep 0.01; done
t_first=$(date +%s%N)
while [ "$(processed)" -lt "$N" ]; do sleep 0.02; done
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
steady_ms=$(( (t1 - t_first) / 1000000 ))
# shellcheck disable=SC2154 # start_role sets it
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$processor_PID/status")
rows=$(sql "$RESULTS_DB" 'SELECT count(*) FROM results')
echo "drained $N in $ms ms from start: $(( N * 1000 / ms )) msg/s;" \
	"from the first result: $(( N * 1000 / steady_ms )) msg/s;" \
	"peak RSS $((hwm / 1024)) MiB; $rows result rows"
