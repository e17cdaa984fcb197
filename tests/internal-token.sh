#!/bin/bash
# INTERNAL_TOKEN between the roles: messages flow through the gateway,
# ingest and the processor answer 401 to anything but GET /health without
# the exact bearer token, a role without it gets errors, diplomctl sends it
# from INTERNAL_TOKEN_FILE, and no log line ever shows it.
. "$(dirname "$0")/lib.sh"

need_tools curl jq sqlite3
need_ctl

tap_plan 15

TOKEN=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
printf '%s\n' "$TOKEN" >"$T_TMP/token"
printf 'not-%s\n' "$TOKEN" >"$T_TMP/wrong"
export INTERNAL_TOKEN_FILE=$T_TMP/token LOG_LEVEL=debug
start_stack || bail "the stack did not start with the token"

# code METHOD URL [CURL ARGS...] : the status of one request
code() {
	local m=$1 u=$2
	shift 2
	curl -s -o "$T_TMP/body" -D "$T_TMP/hdr" -w '%{http_code}' \
		--max-time 5 -X "$m" "$@" "$u"
}
bearer() { printf 'Authorization: Bearer %s' "$1"; }
msg() {
	printf '{"id":"%s","timestamp":%d,"source":"t","payload":"eA=="}' \
		"$(cat /proc/sys/kernel/random/uuid)" "$(date +%s)"
}
JSON='Content-Type: application/json'

flows() {
	send_n 5 tok "$T_TMP/sent"
	[ "$(accepted_in "$T_TMP/sent")" -eq 5 ] &&
		wait_until 10 all_processed "$T_TMP/sent"
}
tap_ok "messages flow through the gateway with the token" flows
tap_ok "the gateway's status reaches ingest and the processor" \
	eval 'curl -s "$GW/api/v1/status" |
		jq -e ".ingest.healthy and .processor.healthy" >/dev/null'

# every request that is not GET /health, as "METHOD URL"
guarded() {
	cat <<EOF
POST $ING/ingest
POST $PROC/enqueue
GET $ING/metrics
GET $PROC/metrics
GET $ING/stats
GET $PROC/stats
GET $ING/admin
GET $PROC/admin
POST $ING/admin/drain
GET $PROC/failed
GET $PROC/nowhere
EOF
}
# all_401 [CURL ARGS...] : every guarded request answers 401, as JSON with
# WWW-Authenticate: Bearer
all_401() {
	local m u c bad=0
	while read -r m u; do
		c=$(code "$m" "$u" -H "$JSON" -d '{"data":"x"}' "$@")
		if [ "$c" != 401 ] ||
			! grep -qi '^WWW-Authenticate: Bearer' "$T_TMP/hdr" ||
			! jq -e '.error | length > 0' "$T_TMP/body" >/dev/null; then
			tap_note "$m $u: $c $(cat "$T_TMP/body")"
			bad=1
		fi
	done < <(guarded)
	return $bad
}
tap_ok "without a token: 401 from ingest and the processor" all_401
tap_ok "with a wrong token: 401" all_401 -H "$(bearer "not-$TOKEN")"
tap_ok "with the token as a prefix of the right one: 401" \
	all_401 -H "$(bearer "${TOKEN%?}")"
tap_ok "with another scheme: 401" all_401 -H "Authorization: Basic $TOKEN"
tap_ok "the health checks stay open" \
	eval '[ "$(code GET "$ING/health")" = 200 ] &&
		[ "$(code GET "$PROC/health")" = 200 ]'

right() {
	[ "$(code POST "$ING/ingest" -H "$JSON" -H "$(bearer "$TOKEN")" \
		-d '{"source":"t","data":"direct"}')" = 200 ] &&
	[ "$(code POST "$PROC/enqueue" -H "$JSON" -H "$(bearer "$TOKEN")" \
		-d "$(msg)")" = 202 ] &&
	[ "$(code GET "$ING/metrics" -H "$(bearer "$TOKEN")")" = 200 ] &&
	[ "$(code GET "$PROC/metrics" -H "$(bearer "$TOKEN")")" = 200 ] &&
	[ "$(code GET "$ING/stats" -H "$(bearer "$TOKEN")")" = 200 ] &&
	[ "$(code GET "$PROC/stats" -H "$(bearer "$TOKEN")")" = 200 ] &&
	[ "$(code GET "$ING/admin" -H "$(bearer "$TOKEN")")" = 200 ] &&
	[ "$(code GET "$PROC/admin" -H "$(bearer "$TOKEN")")" = 200 ]
}
tap_ok "with the token: 200 and 202" right
tap_ok "the refusals are counted as 401 in the metrics" \
	eval 'curl -s -H "$(bearer "$TOKEN")" "$PROC/metrics" |
		grep -q "^diplom_http_requests_total{code=\"401\"} [1-9]"'

# --- roles without the token -------------------------------------------------------

GW2_PORT=$(free_port)
INTERNAL_TOKEN_FILE='' API_PORT=$GW2_PORT start_role gw2 gateway
wait_health "http://127.0.0.1:$GW2_PORT" 10
tap_ok "a gateway without the token gets no 200 from ingest" \
	eval 'c=$(code POST "http://127.0.0.1:$GW2_PORT/api/v1/ingest" \
		-H "$JSON" -d "{\"data\":\"x\"}"); tap_note "gateway: $c"
		[ "$c" != 200 ] && [ "$c" != 000 ]'

ING2_PORT=$(free_port)
INTERNAL_TOKEN_FILE='' INGEST_PORT=$ING2_PORT start_role ing2 ingest
wait_health "http://127.0.0.1:$ING2_PORT" 10
tap_ok "an ingest without the token gets no 202 from the processor" \
	eval 'c=$(code POST "http://127.0.0.1:$ING2_PORT/ingest" \
		-H "$JSON" -d "{\"data\":\"x\"}"); tap_note "ingest: $c"
		[ "$c" = 502 ] || [ "$c" = 503 ]'

# --- diplomctl -------------------------------------------------------------------------

ctl_counts() {
	exits 0 status --json --interval 0 &&
		jout '[.. | objects | select(.role? == "ingest" or
			.role? == "processor") | .backend] |
			length == 2 and all(. == "memory")'
}
tap_ok "diplomctl status works with the token from INTERNAL_TOKEN_FILE" \
	ctl_counts
tap_ok "diplomctl with a wrong token does not see the roles' backends" \
	eval 'INTERNAL_TOKEN_FILE=$T_TMP/wrong ctl status --json --interval 0;
		! jout "[.. | objects | select(.role? == \"ingest\") |
			.backend] | all(. == \"memory\")"'
tap_ok "diplomctl prints no token" \
	eval '! grep -qF -- "$TOKEN" "$T_TMP/out" "$T_TMP/err"'

stop_pid "$gw2_PID"
stop_pid "$ing2_PID"
stop_stack
tap_ok "no log line shows the token" \
	eval '! grep -lF -- "$TOKEN" "$T_TMP"/*.log'
