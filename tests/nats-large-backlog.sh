#!/bin/bash
# A backlog of large messages drains at once: the processor's pull requests
# are bounded in bytes as well as in messages (NQ_PULL_BYTES), the server
# ends a request when its next message would not fit, and the next request
# follows without waiting for the first to expire. The processor's memory
# stays within a few such windows.
. "$(dirname "$0")/lib.sh"
need_nats

N=60
tap_plan 4
start_nats || bail "nats-server did not start"
stack_env
start_role ingest ingest
start_role gateway gateway
{ wait_health "$ING" 10 && wait_health "$GW" 10; } ||
	bail "ingest and the gateway did not start"

# 700 KB of data: about 930 KB a message on the stream, eight to a window
python3 -c 'import sys; sys.stdout.write("{\"source\":\"big\",\"data\":\"" + "b" * 700000 + "\"}")' \
	>"$T_TMP/big.json"
for i in $(seq "$N"); do
	curl -s --max-time 10 -w '%{http_code}\n' -o "$T_TMP/out" \
		-H 'Content-Type: application/json' \
		--data-binary @"$T_TMP/big.json" "$GW/api/v1/ingest" |
		tr -d '\n' >>"$T_TMP/codes"
	printf ' %s\n' "$(jq -r .message_id "$T_TMP/out" 2>/dev/null)" \
		>>"$T_TMP/codes"
done
tap_ok "$N large messages are accepted with no processor" \
	test "$(accepted_in "$T_TMP/codes")" = "$N"

start=$(date +%s)
start_role processor processor
wait_health "$PROC" 10 || bail "the processor did not start"
all() { all_processed "$T_TMP/codes"; }
# one window expiring unanswered would cost NQ_PULL_EXPIRES_MS and more
tap_ok "every one is processed, without waiting for a request to expire" \
	wait_until 30 all
tap_note "drained in $(($(date +%s) - start)) s"
hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$processor_PID/status")
tap_note "processor peak RSS: $((hwm / 1024)) MiB"
limit=$((256 * 1024))
sanitized_build && limit=$((1024 * 1024))
tap_ok "the processor's peak RSS stays within bounds" test "$hwm" -lt "$limit"
tap_ok "no pull request was lost" not_grep "pull request lost" \
	"$T_TMP/processor.log"
tap_done
