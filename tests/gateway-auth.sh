#!/bin/bash
# The gateway's edge on a memory stack: API keys (plain and sha256:) on
# ingest and message reads, admin keys on /metrics and the status, the
# admin listener, key files read again on SIGHUP without a restart (a bad
# one keeps the keys in use), start failures that name the bad setting,
# rate limits per client address and per key (429 with Retry-After), and
# never a key in a log.
. "$(dirname "$0")/lib.sh"

need_tools curl jq
tap_plan

# a key nobody could guess, nor find in a log by chance
new_key() { echo "$1-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"; }
KEY_A=$(new_key a)
KEY_B=$(new_key b)
KEY_C=$(new_key c)
KEY_ADMIN=$(new_key admin)
KEYS=$T_TMP/api-keys
ADMIN_KEYS=$T_TMP/admin-keys
{
	echo "# the API's keys"
	echo
	echo "$KEY_A"
	echo "sha256:$(printf '%s' "$KEY_B" | sha256sum | cut -d' ' -f1)"
} >"$KEYS"
echo "$KEY_ADMIN" >"$ADMIN_KEYS"

# req METHOD URL [KEY|-] [CURL ARGS...] : prints the status; the answer's
# headers in $T_TMP/hdr, its body in $T_TMP/body; KEY "-": no header
req() {
	local method=$1 url=$2 key=${3:--}
	shift 3 2>/dev/null || shift $#
	local auth=()
	[ "$key" != - ] && auth=(-H "Authorization: Bearer $key")
	curl -s --max-time 10 -X "$method" -D "$T_TMP/hdr" -o "$T_TMP/body" \
		-w '%{http_code}' "${auth[@]}" "$@" "$url"
}
ingest() { req POST "$1/api/v1/ingest" "${2:--}" -d '{"data":"hi"}' "${@:3}"; }

# expect WANT CMD... : CMD prints WANT
expect() {
	local want=$1 got
	shift
	got=$("$@")
	[ "$got" = "$want" ] && return 0
	tap_note "expected $want, got $got: $(head -c 200 "$T_TMP/body")"
	return 1
}

# unauthorized CMD... : CMD is answered 401 with a JSON error and the
# challenge, and the body does not echo the key
unauthorized() {
	expect 401 "$@" &&
		grep -qi '^WWW-Authenticate: Bearer' "$T_TMP/hdr" &&
		jq -e '.error | type == "string"' "$T_TMP/body" >/dev/null &&
		! grep -qF -e "$KEY_A" -e wrong-key "$T_TMP/body"
}

# metric URL NAME [KEY] : a sample's value from URL/metrics
metric() {
	local auth=()
	[ -n "${3:-}" ] && auth=(-H "Authorization: Bearer $3")
	curl -s --max-time 5 "${auth[@]}" "$1/metrics" |
		awk -v k="$2" '$1 == k { print $2 }'
}

stack_ports
start_role processor processor
wait_health "$PROC" 10 || bail "the processor did not start"
start_role ingest ingest
LOG_LEVEL=debug API_KEYS_FILE=$KEYS ADMIN_KEYS_FILE=$ADMIN_KEYS \
	start_role gateway gateway
wait_health "$ING" 10 && wait_health "$GW" 10 ||
	bail "the stack did not start"
GW_LOG=$T_TMP/gateway.log

tap_ok "the gateway logs how many keys, and from where" \
	grep -qF "API keys: 2 from $KEYS" "$GW_LOG"

tap_ok "ingest without a key, with a wrong or a malformed one: 401" \
	eval 'unauthorized ingest "$GW" &&
		unauthorized ingest "$GW" wrong-key &&
		unauthorized ingest "$GW" - -H "Authorization: Basic $KEY_A" &&
		unauthorized ingest "$GW" - -H "Authorization: Bearer"'

batch() { req POST "$1/api/v1/ingest/batch" "${2:--}" -d '[{"data":"aGk="},{"data":"aGk="}]'; }
batch_matrix() {
	unauthorized batch "$GW" && unauthorized batch "$GW" wrong-key &&
		expect 200 batch "$GW" "$KEY_B" &&
		jq -e '.errors == false and (.items | length) == 2' \
			"$T_TMP/body" >/dev/null
}
tap_ok "a batch: 401 without a key or with a wrong one, 200 with one" \
	batch_matrix

ID=
ingest_ok() {
	expect 200 ingest "$GW" "$KEY_A" && ID=$(jq -r .message_id "$T_TMP/body") &&
		expect 200 ingest "$GW" "$KEY_B" && [ -n "$ID" ]
}
tap_ok "ingest with a plain key and with a key given as sha256: 200" ingest_ok

processed() { [ "$(req GET "$GW/api/v1/messages/$ID" "$KEY_A")" = 200 ]; }
read_matrix() {
	wait_until 10 processed || return 1
	unauthorized req GET "$GW/api/v1/messages/$ID" - &&
		unauthorized req GET "$GW/api/v1/messages/$ID" wrong-key &&
		expect 200 req GET "$GW/api/v1/messages/$ID" "$KEY_A" &&
		jq -e --arg id "$ID" '.message_id == $id' "$T_TMP/body" >/dev/null &&
		expect 404 req GET "$GW/api/v1/messages/$ID" "$KEY_B"
}
# (tenancy.sh has the rest of who reads what)
tap_ok "reading a message: 401 without or with a wrong key, 200 with the sender's, 404 with another's" \
	read_matrix

tap_ok "/health needs no key" expect 200 req GET "$GW/health" -

admin_matrix() {
	local p
	for p in /metrics /api/v1/status; do
		unauthorized req GET "$GW$p" - &&
			unauthorized req GET "$GW$p" "$KEY_A" &&
			expect 200 req GET "$GW$p" "$KEY_ADMIN" || return 1
	done
}
tap_ok "/metrics and /api/v1/status: 401 without an admin key (an API key is not one), 200 with" \
	admin_matrix

counted() {
	local n
	n=$(metric "$GW" diplom_gateway_unauthorized_total "$KEY_ADMIN")
	[ -n "$n" ] && [ "$n" -ge 10 ]
}
tap_ok "401s are counted in diplom_gateway_unauthorized_total" counted

# --- SIGHUP ------------------------------------------------------------------

PID_BEFORE=$gateway_PID
# hup_logged N : the log holds N lines about a SIGHUP
hup_logged() { [ "$(grep -c 'SIGHUP: re' "$GW_LOG")" -ge "$1" ]; }
echo "$KEY_C" >"$KEYS.new" && mv "$KEYS.new" "$KEYS"
kill -HUP "$gateway_PID"
wait_until 5 hup_logged 1 || tap_note "no SIGHUP line in the log"
reloaded() {
	unauthorized ingest "$GW" "$KEY_A" &&
		unauthorized ingest "$GW" "$KEY_B" &&
		expect 200 ingest "$GW" "$KEY_C" &&
		grep -qF "API keys: 1 from $KEYS" "$GW_LOG" &&
		[ "$gateway_PID" = "$PID_BEFORE" ] && pid_running "$gateway_PID" &&
		[ "$(grep -c 'diplomd .* started' "$GW_LOG")" = 1 ]
}
tap_ok "a changed key file and SIGHUP: old keys 401, the new one 200, same process" \
	reloaded

echo "sha256:not-hex-$KEY_A" >"$KEYS"
kill -HUP "$gateway_PID"
wait_until 5 hup_logged 2 || tap_note "no second SIGHUP line in the log"
kept_keys() {
	grep -q 'error: SIGHUP: reload failed.*API_KEYS_FILE.*64 hex digits' \
		"$GW_LOG" &&
		expect 200 ingest "$GW" "$KEY_C" &&
		unauthorized ingest "$GW" "$KEY_A"
}
tap_ok "a bad key file on SIGHUP: an error logged, the keys in use stay" \
	kept_keys
echo "$KEY_C" >"$KEYS"

stop_pid "$gateway_PID"
tap_ok "the gateway stops cleanly" [ "$STOP_RC" = 0 ]

# --- start failures ------------------------------------------------------------

# start_fails WANT_IN_LOG ENV... : the gateway refuses to start, saying WANT
start_fails() {
	local want=$1 rc=0
	shift
	env "$@" API_PORT="$(free_port)" timeout 10 "$DIPLOMD" --role=gateway \
		>"$T_TMP/fail.out" 2>&1 || rc=$?
	cat "$T_TMP/fail.out" >>"$T_TMP/start-failures.log"
	if [ "$rc" = 0 ] || [ "$rc" = 124 ]; then
		tap_note "exit status $rc"
		return 1
	fi
	grep -qF -- "$want" "$T_TMP/fail.out" ||
		{ sed 's/^/# /' "$T_TMP/fail.out"; return 1; }
}
: >"$T_TMP/empty-keys"
printf '# none yet\n\n' >"$T_TMP/comment-keys"
tap_ok "start fails: unreadable API_KEYS_FILE" \
	start_fails "API_KEYS_FILE: cannot read $T_TMP/no-such-file" \
	API_KEYS_FILE="$T_TMP/no-such-file"
tap_ok "start fails: API_KEYS_FILE without a key" \
	start_fails "API_KEYS_FILE: $T_TMP/comment-keys holds no key" \
	API_KEYS_FILE="$T_TMP/comment-keys"
tap_ok "start fails: empty ADMIN_KEYS_FILE" \
	start_fails "ADMIN_KEYS_FILE: $T_TMP/empty-keys holds no key" \
	ADMIN_KEYS_FILE="$T_TMP/empty-keys"
bad_listen() {
	local v
	for v in 127.0.0.1 127.0.0.1:0 127.0.0.1:99999 ::1:9000 '[::1]' \
		'[::1]:x' :9000; do
		start_fails "ADMIN_LISTEN_ADDRESS: '$v' is not ADDR:PORT" \
			ADMIN_LISTEN_ADDRESS="$v" || return 1
	done
	start_fails "ADMIN_LISTEN_ADDRESS: cannot resolve" \
		ADMIN_LISTEN_ADDRESS=no.such.host.invalid:9000
}
tap_ok "start fails: a bad ADMIN_LISTEN_ADDRESS, named" bad_listen

# --- the admin listener -------------------------------------------------------

ADMIN_PORT=$(free_port)
ADM=http://127.0.0.1:$ADMIN_PORT
ADMIN_LISTEN_ADDRESS=127.0.0.1:$ADMIN_PORT ADMIN_KEYS_FILE=$ADMIN_KEYS \
	API_KEYS_FILE=$KEYS start_role gateway gateway
wait_health "$GW" 10 && wait_health "$ADM" 10 ||
	bail "the gateway with an admin listener did not start"

admin_listener() {
	expect 404 req GET "$GW/metrics" "$KEY_ADMIN" &&
		expect 404 req GET "$GW/api/v1/status" "$KEY_ADMIN" &&
		expect 200 req GET "$GW/health" - &&
		expect 200 ingest "$GW" "$KEY_C" &&
		unauthorized req GET "$ADM/metrics" - &&
		unauthorized req GET "$ADM/api/v1/status" "$KEY_C" &&
		expect 200 req GET "$ADM/metrics" "$KEY_ADMIN" &&
		grep -q '^diplom_gateway_unauthorized_total 2$' "$T_TMP/body" &&
		expect 200 req GET "$ADM/api/v1/status" "$KEY_ADMIN" &&
		jq -e '.ingest.healthy and .processor.healthy' "$T_TMP/body" \
			>/dev/null &&
		expect 200 req GET "$ADM/health" - &&
		expect 404 ingest "$ADM" "$KEY_C"
}
tap_ok "ADMIN_LISTEN_ADDRESS: /metrics and status there (admin keys still apply), 404 on the API port" \
	admin_listener

both_closed() {
	[ "$(http_code "$GW/health" 1)" = 000 ] &&
		[ "$(http_code "$ADM/health" 1)" = 000 ]
}
stop_pid "$gateway_PID"
tap_ok "both listeners stop with the gateway" \
	eval '[ "$STOP_RC" = 0 ] && both_closed'

# --- rate limits ------------------------------------------------------------

printf '%s\n%s\n' "$KEY_A" "$KEY_C" >"$KEYS"
RATE_LIMIT=1 RATE_BURST=5 API_KEYS_FILE=$KEYS start_role gateway gateway
wait_health "$GW" 10 || bail "the rate-limited gateway did not start"

# burst N KEY [CURL ARGS] : N quick requests; their statuses in
# $T_TMP/codes, each 429's Retry-After in $T_TMP/retry
burst() {
	local n=$1 key=$2 i
	shift 2
	: >"$T_TMP/codes"
	: >"$T_TMP/retry"
	for i in $(seq "$n"); do
		ingest "$GW" "$key" "$@" >>"$T_TMP/codes"
		echo >>"$T_TMP/codes"
		if [ "$(tail -n 1 "$T_TMP/codes")" = 429 ]; then
			tr -d '\r' <"$T_TMP/hdr" |
				awk 'tolower($1) == "retry-after:" { print $2 }' \
					>>"$T_TMP/retry"
			jq -e '.error == "rate limit exceeded"' "$T_TMP/body" \
				>/dev/null || echo bad-body >>"$T_TMP/retry"
		fi
	done
}
count_of() { grep -cx "$1" "$T_TMP/codes"; }
limited() {
	burst 20 "$KEY_A"
	local ok limited
	ok=$(count_of 200)
	limited=$(count_of 429)
	tap_note "20 requests: $ok answered 200, $limited 429"
	[ "$ok" -ge 5 ] && [ "$ok" -le 12 ] && [ $((ok + limited)) = 20 ] &&
		[ "$(wc -l <"$T_TMP/retry")" = "$limited" ] &&
		! grep -qv '^[1-9][0-9]*$' "$T_TMP/retry"
}
tap_ok "RATE_LIMIT=1 RATE_BURST=5: a burst of 20 gets the burst through, then 429 with Retry-After" \
	limited
# two at once: a token that came meanwhile lets one through, not both
keyless_limited() {
	burst 2 -
	[ "$(count_of 429)" -ge 1 ] && [ "$(count_of 200)" = 0 ]
}
tap_ok "over the limit, a request without a key is 429 too (the address's bucket comes first)" \
	keyless_limited
tap_ok "/health is not limited" expect 200 req GET "$GW/health" -

# the key's bucket, from another loopback address: empty for KEY_A
per_key() {
	if ! curl -s -o /dev/null --max-time 2 --interface 127.0.0.2 \
		"$GW/health"; then
		tap_note "cannot send from 127.0.0.2"
		return 2
	fi
	burst 2 "$KEY_A" --interface 127.0.0.2
	[ "$(count_of 429)" -ge 1 ] &&
		expect 200 ingest "$GW" "$KEY_C" --interface 127.0.0.2 &&
		[ "$(metric "$GW" 'diplom_gateway_rate_limited_total{by="key"}')" -ge 1 ] &&
		[ "$(metric "$GW" 'diplom_gateway_rate_limited_total{by="address"}')" -ge 10 ]
}
per_key
case $? in
0) tap_pass "per key: a key held back from one address is held back from another, where another key passes" ;;
2) tap_skip "per key: a key held back from one address is held back from another" "no second loopback address" ;;
*) tap_fail "per key: a key held back from one address is held back from another, where another key passes" ;;
esac
stop_pid "$gateway_PID"

# --- secrets -------------------------------------------------------------------

no_key_logged() {
	local k
	for k in "$KEY_A" "$KEY_B" "$KEY_C" "$KEY_ADMIN"; do
		if grep -lF -- "$k" "$T_TMP"/*.log; then
			return 1
		fi
	done
}
tap_ok "no key appears in any log (the gateway's at debug level)" no_key_logged

stop_stack
tap_done
