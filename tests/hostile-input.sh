#!/bin/bash
# Input json-c takes but a message must not have is 400 on every way in:
# NaN and Infinity (in unknown fields too), a \u0000 in source, data,
# metadata or a DataMessage id (naming the field), bytes that are not
# UTF-8 anywhere in the body. A message id with a newline and ANSI escapes
# reaches the text log escaped, on one line, at debug level.
. "$(dirname "$0")/lib.sh"

need_tools curl jq

tap_plan 16
LOG_LEVEL=debug start_stack || bail "the stack did not start"

# expect STATUS URL BODY [TEXT] : the answer's status, and TEXT in its error
expect() {
	local code
	code=$(curl -s -o "$T_TMP/out" -w '%{http_code}' -H \
		'Content-Type: application/json' --data-binary "$3" "$2")
	[ "$code" = "$1" ] || { echo "# $2: $code, want $1" >&2; return 1; }
	[ -z "${4-}" ] || jq -e --arg t "$4" '.error | contains($t)' \
		"$T_TMP/out" >/dev/null ||
		{ echo "# error: $(cat "$T_TMP/out"), want '$4'" >&2; return 1; }
}
I=$GW/api/v1/ingest

tap_ok "NaN in an unknown field is 400" \
	expect 400 "$I" '{"data":"x","extra":NaN}' "NaN"
tap_ok "Infinity deep in an unknown field is 400, with its place" \
	expect 400 "$I" '{"data":"x","e":{"a":[1,-Infinity]}}' "'e.a[1]'"
tap_ok "a \\u0000 in source is 400 naming it" \
	expect 400 "$I" '{"source":"a\u0000b","data":"x"}' "field 'source'"
tap_ok "a \\u0000 in data is 400 naming it" \
	expect 400 "$I" '{"data":"x\u0000"}' "field 'data'"
tap_ok "a \\u0000 in a metadata value is 400 naming it" \
	expect 400 "$I" '{"data":"x","metadata":{"k":"v\u0000w"}}' "field 'metadata.k'"
tap_ok "a \\u0000 in a metadata key is 400" \
	expect 400 "$I" '{"data":"x","metadata":{"k\u0000z":"v"}}' "a key in 'metadata'"
tap_ok "invalid UTF-8 in source is 400" \
	expect 400 "$I" "$(printf '{"source":"caf\xe9","data":"x"}')" "UTF-8"
tap_ok "invalid UTF-8 in an unknown field is 400" \
	expect 400 "$I" "$(printf '{"data":"x","o":"\xff\xfe"}')" "UTF-8"
tap_ok "a batch with NaN in one item is 400" \
	expect 400 "$GW/api/v1/ingest/batch" '[{"data":"x"},{"data":"y","n":NaN}]' "NaN"
tap_ok "straight to ingest: a \\u0000 in source is 400" \
	expect 400 "$ING/ingest" '{"source":"\u0000","data":"x"}' "field 'source'"
tap_ok "/enqueue: a \\u0000 in the id is 400 naming it" \
	expect 400 "$PROC/enqueue" '{"id":"a\u0000b","payload":"eA=="}' "field 'id'"
tap_ok "/enqueue: invalid UTF-8 in the source is 400" \
	expect 400 "$PROC/enqueue" "$(printf '{"id":"u-1","source":"\xc0\xaf","payload":"eA=="}')" "UTF-8"
tap_ok "escaped text that is valid stays accepted" \
	expect 200 "$I" '{"source":"caf\u00e9 \\u0000","data":"x\u0001"}'

# a message id that would forge a line and clear the screen
forged='x\n2026-01-01T00:00:00.000Z processor info: FORGED\u001b[2J'
tap_ok "/enqueue takes an id with a newline and an ANSI escape" \
	expect 202 "$PROC/enqueue" "{\"id\":\"$forged\",\"payload\":\"eA==\"}"
wait_until 5 grep -q 'FORGED' "$T_TMP/processor.log"
tap_ok "the debug log has no line the client forged" \
	eval "! grep -q '^2026-01-01T00:00:00.000Z processor info: FORGED' '$T_TMP/processor.log'"
no_escape() {
	grep -q 'x\\n2026-01-01T00:00:00.000Z processor info: FORGED\\x1b\[2J' \
		"$T_TMP/processor.log" &&
	! grep -q "$(printf '\033')" "$T_TMP/processor.log"
}
tap_ok "the id is in the log escaped, without a raw ESC" no_escape
tap_done
