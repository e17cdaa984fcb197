#!/bin/bash
# Client retries without duplicates on the memory backend: a request with an
# Idempotency-Key gets the same message id on every retry and ends in one
# result row, processed once, whether the retry comes while the message is
# queued, in process or done. Bad keys are 400 from the first hop.
. "$(dirname "$0")/lib.sh"

tap_plan 12
need_loadgen
stack_ports
# one slow worker, so that a message stays queued or in process a while
export PROCESSOR_WORKERS=1 PROCESSING_DELAY_MS=300
stack_roles || bail "the stack did not start"

# keyed KEY : post a message with KEY; print its id (empty on failure)
keyed() {
	curl -s --max-time 5 -H "Idempotency-Key: $1" \
		-H 'Content-Type: application/json' -d '{"data":"keyed"}' \
		"$GW/api/v1/ingest" | jq -r '.message_id // empty'
}

a1=$(keyed order-1)
a2=$(keyed order-1)	# the first is still queued or in process
b1=$(keyed order-2)
tap_ok "a retry gets the same message id" test -n "$a1" -a "$a1" = "$a2"
tap_ok "another key, another id" test -n "$b1" -a "$a1" != "$b1"
rows_of() { sql "$RESULTS" "SELECT count(*) FROM results WHERE message_id = '$1'"; }
both_done() { [ "$(rows_of "$a1")" = 1 ] && [ "$(rows_of "$b1")" = 1 ]; }
tap_ok "both are processed" wait_until 10 both_done
a3=$(keyed order-1)	# done by now
sleep 0.8
tap_ok "a retry of a processed message gets its id again" test "$a3" = "$a1"
tap_ok "one row, delivered once, whenever the retries came" test \
	"$(sql "$RESULTS" "SELECT deliveries FROM results WHERE message_id = '$a1'")" = 1
tap_ok "the processor processed two messages, not four" \
	test "$(stat_of "$PROC/stats" .pool.ProcessedCount)" = 2

# raw PORT KEY : the status of a request with exactly that key header
raw() {
	python3 - "$1" "$2" <<'PY'
import socket, sys
body = b'{"data":"x"}'
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nIdempotency-Key: " +
          sys.argv[2].encode("utf-8", "surrogateescape") + b"\r\nContent-Length: " +
          str(len(body)).encode() + b"\r\n\r\n" + body)
print(s.recv(4096).split(b"\r\n")[0].split(b" ")[1].decode())
PY
}
bad_keys_400() {
	local k
	for k in '' "$(printf 'k%.0s' $(seq 129))" $'caf\xe9' $'a\x01b'; do
		[ "$(raw "$GW_PORT" "$k")" = 400 ] || return 1
	done
}
tap_ok "bad keys (empty, too long, non-ASCII, control) are 400" bad_keys_400
ingest_bad_key() {
	curl -s -o /dev/null -w '%{http_code}' -H "Idempotency-Key: $(printf 'x%.0s' $(seq 129))" \
		-d '{"data":"x"}' "$ING/ingest" | grep -qx 400
}
tap_ok "ingest refuses a bad key too" ingest_bad_key

# a retrying client while ingest is SIGKILLed, then while the processor
# restarts: every accepted message has its one row, none a stranger
# the two keyed messages above are no client's: count them out
base=$(sql "$RESULTS" "SELECT count(*) FROM results")
stop_stack
export PROCESSOR_WORKERS=4 PROCESSING_DELAY_MS=0
stack_roles || bail "the stack did not restart"
load_through kill "ingest killed" kill_ingest "$base"
load_through restart "the processor restarted" restart_processor "$base"
tap_done
