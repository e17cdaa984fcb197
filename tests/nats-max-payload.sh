#!/bin/bash
# On NATS too, a request within MAX_BODY_BYTES is never refused for its size
# after the gateway took it: the broker runs with the package's settings
# (max_payload 2MB), and ingest warns when the broker's max_payload is
# short of what MAX_BODY_BYTES can become.
. "$(dirname "$0")/lib.sh"
need_nats

tap_plan 4
start_nats || bail "nats-server did not start"
stack_env
stack_roles || bail "the stack did not start"

python3 -c 'import sys; sys.stdout.write("{\"data\":\"" + "a" * (1048576 - 11) + "\"}")' \
	>"$T_TMP/max.json"
code=$(curl -s -o "$T_TMP/out" -w '%{http_code}' --max-time 10 \
	-H 'Content-Type: application/json' --data-binary @"$T_TMP/max.json" \
	"$GW/api/v1/ingest")
tap_note "a body of exactly MAX_BODY_BYTES: $code $(head -c 120 "$T_TMP/out")"
tap_ok "a body of MAX_BODY_BYTES is published" test "$code" = 200
id=$(jq -r .message_id "$T_TMP/out" 2>/dev/null)
processed() {
	test "$(curl -s -o /dev/null -w '%{http_code}' "$GW/api/v1/messages/$id")" = 200
}
tap_ok "and processed" wait_until 10 processed
tap_ok "ingest does not warn about max_payload" \
	not_grep max_payload "$T_TMP/ingest.log"

# a limit the broker cannot carry: said at start, naming the fix
MAX_BODY_BYTES=4000000 start_role ingest2 ingest --port="$(free_port)"
warned() { grep -q "max_payload is 2097152 bytes" "$T_TMP/ingest2.log"; }
tap_ok "a MAX_BODY_BYTES past max_payload is warned about" \
	wait_until 5 warned
tap_done
