#!/bin/bash
# doc/openapi.yaml against the daemon: an OpenAPI linter (@redocly/cli,
# installed with npm into a cache of its own) finds it valid, and real
# answers of every role match what it says of their status, headers and
# bodies (tests/openapi-check.py). Every status it lists for an endpoint
# must have been provoked here, so the two cannot drift apart.
. "$(dirname "$0")/lib.sh"

REDOCLY_VERSION=1.34.20
DOC=$top_srcdir/doc/openapi.yaml
RECORDS=$T_TMP/records
tap_plan

# needed: a failure when DIPLOM_REQUIRE_NATS=1 (CI), else a skip
need() {
	if [ "${DIPLOM_REQUIRE_NATS:-0}" = 1 ]; then
		echo "Bail out! $1 and DIPLOM_REQUIRE_NATS=1"
		exit 1
	fi
	tap_skip_all "$1"
}
python3 -c 'import jsonschema, yaml' 2>/dev/null ||
	need "python3 with jsonschema and yaml not installed"
for tool in jq sqlite3; do
	command -v "$tool" >/dev/null 2>&1 || need "$tool not installed"
done

# --- the linter ------------------------------------------------------------

# A cache outside the tree (make distcheck, several clones): installed into
# a directory of its own, then renamed into place, so that two runs at once
# cannot see half an install.
LINT_CACHE=${DIPLOM_TOOLS_CACHE:-${XDG_CACHE_HOME:-${HOME:-$T_TMP}/.cache}/diplom}
LINT_DIR=$LINT_CACHE/redocly-cli-$REDOCLY_VERSION
REDOCLY=$LINT_DIR/node_modules/.bin/redocly

install_redocly() {
	local tmp
	[ -x "$REDOCLY" ] && return 0
	mkdir -p "$LINT_CACHE" && tmp=$(mktemp -d "$LINT_CACHE/.install.XXXXXX") ||
		return 1
	if ! npm install --prefix "$tmp" --no-audit --no-fund --no-save \
		--loglevel=error "@redocly/cli@$REDOCLY_VERSION" \
		>"$T_TMP/npm.log" 2>&1; then
		sed 's/^/# /' "$T_TMP/npm.log" | tail -20
		rm -rf "$tmp"
		return 1
	fi
	mv -T "$tmp" "$LINT_DIR" 2>/dev/null || rm -rf "$tmp"
	[ -x "$REDOCLY" ]
}

lint() {
	# from $T_TMP, where no redocly.yaml changes the rules
	(cd "$T_TMP" && REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
		"$REDOCLY" lint --extends=recommended-strict "$DOC") \
		>"$T_TMP/lint.log" 2>&1
	local rc=$?
	[ "$rc" = 0 ] || sed 's/^/# /' "$T_TMP/lint.log"
	return "$rc"
}

if [ ! -x "$REDOCLY" ] && ! command -v npm >/dev/null 2>&1; then
	if [ "${DIPLOM_REQUIRE_NATS:-0}" = 1 ]; then
		tap_fail "npm is needed for the linter (DIPLOM_REQUIRE_NATS=1)"
	else
		tap_skip "the document passes @redocly/cli lint" "npm not installed"
	fi
elif ! install_redocly; then
	tap_fail "@redocly/cli@$REDOCLY_VERSION installs with npm"
else
	tap_ok "the document passes @redocly/cli@$REDOCLY_VERSION lint (recommended-strict)" lint
fi

# --- real answers ----------------------------------------------------------

# r ROLE METHOD TEMPLATE PATH [OPTIONS] : one request to ROLE's base URL,
# checked (openapi-check.py req); its body in $T_TMP/out
r() {
	local role=$1 url
	shift
	case $role in
	gateway) url=$GW ;;
	ingest) url=$ING ;;
	processor) url=$PROC ;;
	esac
	python3 "$top_srcdir/tests/openapi-check.py" "$DOC" "$RECORDS" req \
		"$role=$url" "$@" >"$T_TMP/out"
}

# check COMMAND ARGS... : another command of openapi-check.py
check() { python3 "$top_srcdir/tests/openapi-check.py" "$DOC" "$RECORDS" "$@"; }

# drain ROLE URL PID : every operation of the role is 503 while it drains;
# then it ends
drain() {
	local rc=0
	check drain "$1=$2" "$3" || rc=1
	pid_wait "$3" 25 || rc=1
	untrack "$3"
	return "$rc"
}

# all ok: run every check of a group even after one failed
all() {
	local rc=0 cmd
	for cmd in "$@"; do
		eval "$cmd" || rc=1
	done
	return "$rc"
}

# big N : a JSON ingest request of about N bytes
big() { printf '{"data":"%*s"}' "$1" '' | tr ' ' x; }

has_result() { [ "$(http_code "$PROC/stats")" = 200 ] && [ "$(http_code "$PROC/results/$1")" = 200 ]; }

stack_ports
export MAX_BODY_BYTES=4096 DRAIN_TIMEOUT=20s

# Failed rows, written into the result store before the processor starts
# (it makes the store, then stops): the memory backend fails no message.
start_role processor processor
wait_health "$PROC" 10 || bail "the processor did not start"
stop_pid "$processor_PID"
now=$(date +%s)
# fail_row ID AGE_SECONDS MESSAGE|NULL : a failed row keeping MESSAGE
fail_row() {
	local msg=NULL
	[ "$3" != NULL ] && msg="CAST('$3' AS BLOB)"
	sql "$RESULTS" "INSERT INTO results (message_id, source, timestamp,
	    processed_at, success, error, result, deliveries, message) VALUES
	    ('$1', 'openapi', $now, $((now - $2)), 0, 'given up: test', '', 3,
	    $msg)"
}
# kept ID : a DataMessage of that id, as a failed row keeps it
kept() { printf '{"id":"%s","timestamp":%d,"payload":"aGk="}' "$1" "$now"; }
if ! fail_row openapi-failed 60 "$(kept openapi-failed)" ||
	! fail_row openapi-unkept 30 NULL ||
	! fail_row openapi-full 10 "$(kept openapi-full)"; then
	bail "cannot write failed rows into $RESULTS"
fi
# the second stack's processor starts with them too
sqlite3 "$RESULTS" ".backup '$T_TMP/results2.db'" ||
	bail "cannot copy $RESULTS"

stack_roles || bail "the stack did not start"

ING_BODY='{"source":"openapi","data":"hello","metadata":{"k":"v"}}'
ID=
gateway_ingest() {
	r gateway POST /api/v1/ingest /api/v1/ingest -d "$ING_BODY" --expect 200 &&
		ID=$(jq -r .message_id "$T_TMP/out")
	all "r gateway POST /api/v1/ingest /api/v1/ingest -H 'Idempotency-Key: openapi-1' -d '$ING_BODY' --expect 200" \
		"r gateway POST /api/v1/ingest /api/v1/ingest -d '{\"data\":' --expect 400" \
		"r gateway POST /api/v1/ingest /api/v1/ingest -H 'Idempotency-Key: $(printf '%*s' 129 '' | tr ' ' k)' -d '{}' --expect 400" \
		"r gateway POST /api/v1/ingest /api/v1/ingest -d '$(big 5000)' --expect 413" \
		"r gateway POST /api/v1/ingest /api/v1/ingest -H 'Idempotency-Key: openapi-1' -d '{\"data\":\"other\"}' --expect 422" &&
		[ -n "$ID" ]
}
tap_ok "gateway POST /api/v1/ingest: 200, 400, 413, 422" gateway_ingest

KEYED=
ingest_ingest() {
	r ingest POST /ingest /ingest -H 'Idempotency-Key: openapi-2' -d "$ING_BODY" --expect 200 &&
		KEYED=$(jq -r .message_id "$T_TMP/out")
	all "r ingest POST /ingest /ingest -d '{}' --expect 200" \
		"r ingest POST /ingest /ingest -H 'Idempotency-Key: openapi-2' -d '{\"data\":\"other\"}' --expect 422" \
		"r ingest POST /ingest /ingest -d '{\"metadata\":{\"k\":1}}' --expect 400" \
		"r ingest POST /ingest /ingest -d '$(big 5000)' --expect 413" &&
		[ -n "$KEYED" ]
}
tap_ok "ingest POST /ingest: 200, 400, 413, 422" ingest_ingest

# jout FILTER : jq -e FILTER holds for the last answer's body
jout() { jq -e "$1" "$T_TMP/out" >/dev/null; }

# many N : a JSON array of N empty ingest requests
many() { printf '[%s{}]' "$(printf '{},%.0s' $(seq $(($1 - 1))))"; }
BATCH='[{"source":"openapi","data":"a"},{"source":7},{"data":"c","idempotency_key":"openapi-3"},{"data":"d","idempotency_key":"openapi-3"}]'
ND=$(printf '{"data":"a"}\n\n{"data":\n')
tap_ok "gateway POST /api/v1/ingest/batch: 200 (JSON, NDJSON), 400, 413" all \
	"r gateway POST /api/v1/ingest/batch /api/v1/ingest/batch -d '$BATCH' --expect 200" \
	"jout '.errors and [.items[].status] == [200, 400, 200, 422]'" \
	"r gateway POST /api/v1/ingest/batch /api/v1/ingest/batch -H 'Content-Type: application/x-ndjson' -d '$ND' --expect 200" \
	"jout '[.items[].status] == [200, 400]'" \
	"r gateway POST /api/v1/ingest/batch /api/v1/ingest/batch -d '[]' --expect 400" \
	"r gateway POST /api/v1/ingest/batch /api/v1/ingest/batch -d '{\"data\":\"a\"}' --expect 400" \
	"r gateway POST /api/v1/ingest/batch /api/v1/ingest/batch -d '$(many 1001)' --expect 413" \
	"r gateway POST /api/v1/ingest/batch /api/v1/ingest/batch -d '$(big 5000)' --expect 413"
tap_ok "ingest POST /ingest/batch: 200 (JSON, NDJSON), 400, 413" all \
	"r ingest POST /ingest/batch /ingest/batch -d '[{}]' --expect 200" \
	"jout '.errors == false'" \
	"r ingest POST /ingest/batch /ingest/batch -H 'Content-Type: application/x-ndjson' -d '$ND' --expect 200" \
	"r ingest POST /ingest/batch '/ingest/batch?format=ndjson' -d '{}' --expect 200" \
	"r ingest POST /ingest/batch /ingest/batch -d '[{}' --expect 400" \
	"r ingest POST /ingest/batch /ingest/batch -d '$(many 1001)' --expect 413" \
	"r ingest POST /ingest/batch /ingest/batch -d '$(big 5000)' --expect 413"
tap_ok "processor POST /enqueue/batch: 200, 400" all \
	"r processor POST /enqueue/batch /enqueue/batch -d '[{\"id\":\"openapi-b1\"},{\"payload\":\"aGk=\"}]' --expect 200" \
	"jout '[.items[].status] == [202, 400]'" \
	"r processor POST /enqueue/batch /enqueue/batch -d '{\"id\":\"x\"}' --expect 400"

# drain and resume without stopping: /ingest refuses meanwhile
tap_ok "ingest GET /admin, POST /admin/drain and /admin/resume: 200" all \
	"r ingest GET /admin /admin --expect 200" \
	"jout '.role == \"ingest\" and .backend == \"memory\" and .accepting and .in_flight == 0'" \
	"r ingest POST /admin/drain /admin/drain --expect 200" \
	"jout '.accepting == false'" \
	"r ingest POST /admin/drain /admin/drain --expect 200" \
	"r ingest POST /ingest /ingest -d '{}' --expect 503" \
	"jout '.error == \"draining for maintenance\"'" \
	"r gateway POST /api/v1/ingest /api/v1/ingest -d '{}' --expect 503" \
	"r ingest POST /ingest/batch /ingest/batch -d '[{}]' --expect 503" \
	"r gateway POST /api/v1/ingest/batch /api/v1/ingest/batch -d '[{}]' --expect 503" \
	"r ingest GET /health /health --expect 503" \
	"jout '.reason == \"draining for maintenance\"'" \
	"r ingest GET /admin /admin --expect 200" \
	"jout '.accepting == false'" \
	"r ingest POST /admin/resume /admin/resume --expect 200" \
	"jout '.accepting'" \
	"r ingest POST /admin/resume /admin/resume --expect 200" \
	"r ingest POST /ingest /ingest -d '{}' --expect 200" \
	"r ingest GET /health /health --expect 200"

# a payload that is not UTF-8 comes back base64
tap_ok "processor POST /enqueue: 202, 400, 422" all \
	"r processor POST /enqueue /enqueue -d '{\"id\":\"openapi-bin\",\"payload\":\"//4=\"}' --expect 202" \
	"r processor POST /enqueue /enqueue -d '{\"id\":\"$KEYED\",\"payload\":\"b3RoZXI=\"}' --expect 422" \
	"r processor POST /enqueue /enqueue -d '{\"payload\":\"aGk=\"}' --expect 400" \
	"r processor POST /enqueue /enqueue -d '{\"id\":\"x\",\"payload\":\"not base64\"}' --expect 400"

if ! wait_until 10 has_result "$ID" || ! wait_until 10 has_result openapi-bin; then
	bail "the messages were not processed"
fi
tap_ok "results: 200 (text and base64), 404" all \
	"r processor GET /results/{id} /results/$ID --expect 200" \
	"r processor GET /results/{id} /results/openapi-bin --expect 200" \
	"grep -q result_encoding $T_TMP/out" \
	"r processor GET /results/{id} /results/no-such-id --expect 404" \
	"r gateway GET /api/v1/messages/{id} /api/v1/messages/$ID --expect 200" \
	"r gateway GET /api/v1/messages/{id} /api/v1/messages/no-such-id --expect 404"

tap_ok "processor GET /failed: 200 newest first, since, limit; 400" all \
	"r processor GET /failed /failed --expect 200" \
	"jout '[.failed[].message_id] == [\"openapi-full\", \"openapi-unkept\", \"openapi-failed\"] and [.failed[].kept] == [true, false, true]'" \
	"r processor GET /failed '/failed?since=$((now - 40))&limit=1' --expect 200" \
	"jout '[.failed[].message_id] == [\"openapi-full\"]'" \
	"r processor GET /failed '/failed?since=$((now + 60))' --expect 200" \
	"jout '.failed == []'" \
	"r processor GET /failed '/failed?limit=0' --expect 400" \
	"r processor GET /failed '/failed?limit=10001' --expect 400" \
	"r processor GET /failed '/failed?since=-1' --expect 400" \
	"r processor GET /failed '/failed?since=yesterday' --expect 400" \
	"r processor GET /failed '/failed?since=' --expect 400"

replayed() { [ "$(stat_of "$PROC/results/openapi-failed" .success)" = true ]; }
# the replay succeeds and replaces the failed row: a second one has
# nothing to replay
replay() {
	r processor POST '/replay/{id}' /replay/openapi-failed --expect 202 &&
		jout '.status == "queued"' &&
		wait_until 10 replayed &&
		all "r processor POST /replay/{id} /replay/openapi-failed --expect 409" \
			"jout '.error | test(\"did not fail\")'" \
			"r processor POST /replay/{id} /replay/$ID --expect 409" \
			"r processor POST /replay/{id} /replay/openapi-unkept --expect 409" \
			"jout '.error | test(\"before failed messages were kept\")'" \
			"r processor POST /replay/{id} /replay/no-such-id --expect 404" \
			"r processor GET /results/{id} /results/openapi-failed --expect 200" \
			"jout '.success and .result == \"PROCESSED_hi\" and .deliveries == 4'"
}
tap_ok "processor POST /replay/{id}: 202, 409 (succeeded, not kept), 404" replay

tap_ok "processor GET /admin: 200 with the store's size" all \
	"r processor GET /admin /admin --expect 200" \
	"jout '.role == \"processor\" and .backend == \"memory\" and .results.path == \"$RESULTS\" and .results.rows >= 5 and .results.failed == 2 and .results.bytes > 0'"

tap_ok "status, stats, health and metrics of every role: 200" all \
	"r gateway GET /api/v1/status /api/v1/status --expect 200" \
	"r ingest GET /stats /stats --expect 200" \
	"r processor GET /stats /stats --expect 200" \
	"r gateway GET /health /health --expect 200" \
	"r ingest GET /health /health --expect 200" \
	"r processor GET /health /health --expect 200" \
	"r gateway GET /metrics /metrics --expect 200" \
	"r ingest GET /metrics /metrics --expect 200" \
	"r processor GET /metrics /metrics --expect 200"

tap_ok "every role, every endpoint: 405 with Allow, 413, 400, HEAD; 404 elsewhere" \
	check sweep "gateway=$GW" "ingest=$ING" "processor=$PROC"

tap_ok "the processor drains: 503 on every endpoint" \
	drain processor "$PROC" "$processor_PID"
tap_ok "without a processor: 503 from ingest and the gateway, status 200" all \
	"r ingest POST /ingest /ingest -d '{}' --expect 503" \
	"r gateway POST /api/v1/ingest /api/v1/ingest -d '{}' --expect 503" \
	"r gateway GET /api/v1/messages/{id} /api/v1/messages/$ID --expect 503" \
	"r gateway GET /api/v1/status /api/v1/status --expect 200" \
	"jq -e '.processor.healthy == false and .processors[0].stats == {}' $T_TMP/out >/dev/null"
tap_ok "ingest drains: 503 on every endpoint" drain ingest "$ING" "$ingest_PID"
tap_ok "without ingest: 503 from the gateway, status 200" all \
	"r gateway POST /api/v1/ingest /api/v1/ingest -d '{}' --expect 503" \
	"r gateway GET /api/v1/status /api/v1/status --expect 200"
tap_ok "the gateway drains: 503 on every endpoint" \
	drain gateway "$GW" "$gateway_PID"

# A second stack for what needs other settings: a processor that takes one
# message at a time, slowly, with a body limit below ingest's (so that it
# refuses what ingest accepts: ingest's 502); and for the gateway's lookups
# a processor of its own, whose result store is then made unreadable.
RESULTS=$T_TMP/results2.db
stack_ports
LOOKUP_PORT=$(free_port)
LOOKUP=http://127.0.0.1:$LOOKUP_PORT
QUEUE_SIZE=1 PROCESSOR_WORKERS=1 PROCESSING_DELAY_MS=10000 \
	start_role processor processor --max-body-bytes=64
RESULTS_DB=$T_TMP/lookup.db start_role lookup processor --port="$LOOKUP_PORT"
wait_health "$PROC" && wait_health "$LOOKUP" || bail "the processors did not start"
start_role ingest ingest
PROCESSOR_URL=$LOOKUP start_role gateway gateway
wait_health "$ING" && wait_health "$GW" || bail "the second stack did not start"

tap_ok "a processor that refuses what ingest took: 502 from ingest and the gateway" all \
	"r ingest POST /ingest /ingest -d '$(big 2000)' --expect 502" \
	"r gateway POST /api/v1/ingest /api/v1/ingest -d '$(big 2000)' --expect 502"

dequeued() { [ "$(stat_of "$PROC/stats" .queue.TotalDequeued)" = 1 ]; }
full() {
	# one in the worker, one queued: the queue is full for 10 s, time
	# enough for four checks on a loaded machine
	r processor POST /enqueue /enqueue -d '{"id":"full-1"}' --expect 202 &&
		wait_until 5 dequeued &&
		r processor POST /enqueue /enqueue -d '{"id":"full-2"}' --expect 202 &&
		all "r processor POST /enqueue /enqueue -d '{\"id\":\"full-3\"}' --expect 503" \
			"r processor POST /replay/{id} /replay/openapi-full --expect 503" \
			"r ingest POST /ingest /ingest -d '{}' --expect 503" \
			"r gateway POST /api/v1/ingest /api/v1/ingest -d '{}' --expect 503"
}
tap_ok "a full queue: 503 from /enqueue, /replay, ingest and the gateway" full

# zeroes over the store's files: the next read fails
unreadable() {
	local f
	PROC=$LOOKUP r processor POST /enqueue /enqueue -d '{"id":"lookup-1","payload":"aGk="}' --expect 202 &&
		wait_until 10 eval '[ "$(proc_processed "$LOOKUP")" = 1 ]' || return 1
	for f in "$T_TMP/lookup.db" "$T_TMP/lookup.db-wal"; do
		[ -s "$f" ] && dd if=/dev/zero of="$f" bs="$(stat -c %s "$f")" \
			count=1 conv=notrunc status=none
	done
	all "PROC=$LOOKUP r processor GET /results/{id} /results/lookup-1 --expect 500" \
		"PROC=$LOOKUP r processor GET /failed /failed --expect 500" \
		"PROC=$LOOKUP r processor POST /replay/{id} /replay/lookup-1 --expect 500" \
		"PROC=$LOOKUP r processor GET /admin /admin --expect 500" \
		"r gateway GET /api/v1/messages/{id} /api/v1/messages/lookup-1 --expect 500"
}
tap_ok "an unreadable result store: 500 from the processor (results, failed, replay, admin) and the gateway" unreadable
stop_pid "$lookup_PID" KILL
stop_pid "$processor_PID" KILL

# A third pair with INTERNAL_TOKEN: everything but /health is 401 without
# it, and answers as usual with it.
stack_ports
export INTERNAL_TOKEN=openapi-token
RESULTS_DB=$T_TMP/results3.db start_role processor processor
wait_health "$PROC" && start_role ingest ingest && wait_health "$ING" ||
	bail "the roles with a token did not start"
AUTH='Authorization: Bearer openapi-token'
tap_ok "with INTERNAL_TOKEN: 401 from ingest and the processor without it" all \
	"r ingest POST /ingest /ingest -d '{}' --expect 401" \
	"r ingest POST /ingest/batch /ingest/batch -d '[{}]' --expect 401" \
	"r processor POST /enqueue/batch /enqueue/batch -d '[]' --expect 401" \
	"r ingest GET /stats /stats --expect 401" \
	"r ingest GET /metrics /metrics --expect 401" \
	"r ingest GET /admin /admin --expect 401" \
	"r ingest POST /admin/drain /admin/drain --expect 401" \
	"r ingest POST /admin/resume /admin/resume -H 'Authorization: Bearer wrong' --expect 401" \
	"r ingest GET /health /health --expect 200" \
	"r processor POST /enqueue /enqueue -d '{\"id\":\"t-1\"}' --expect 401" \
	"r processor GET /stats /stats --expect 401" \
	"r processor GET /results/{id} /results/t-1 --expect 401" \
	"r processor GET /failed /failed --expect 401" \
	"r processor POST /replay/{id} /replay/t-1 --expect 401" \
	"r processor GET /admin /admin --expect 401" \
	"r processor GET /metrics /metrics -H 'Authorization: Basic openapi-token' --expect 401" \
	"r processor GET /health /health --expect 200" \
	"r ingest POST /ingest /ingest -H '$AUTH' -d '{}' --expect 200" \
	"r processor GET /stats /stats -H '$AUTH' --expect 200"
unset INTERNAL_TOKEN
stop_pid "$ingest_PID"
stop_pid "$processor_PID"
# The gateway's edge: one gateway with API and admin keys (401), one with
# a rate limit of one request a second (429). Their next hops are gone or
# broken by now, which changes nothing of what they answer first.
echo openapi-api-key >"$T_TMP/api-keys"
echo openapi-admin-key >"$T_TMP/admin-keys"
KEYED_PORT=$(free_port)
KEYED=http://127.0.0.1:$KEYED_PORT
LIMITED_PORT=$(free_port)
LIMITED=http://127.0.0.1:$LIMITED_PORT
API_PORT=$KEYED_PORT API_KEYS_FILE=$T_TMP/api-keys \
	ADMIN_KEYS_FILE=$T_TMP/admin-keys start_role keyed gateway
API_PORT=$LIMITED_PORT RATE_LIMIT=1 RATE_BURST=1 start_role limited gateway
wait_health "$KEYED" && wait_health "$LIMITED" ||
	bail "the gateways with keys and a rate limit did not start"

tap_ok "the gateway with keys: 401 without a key or with a wrong one, 200 with one" all \
	"GW=$KEYED r gateway POST /api/v1/ingest /api/v1/ingest -d '{}' --expect 401" \
	"GW=$KEYED r gateway POST /api/v1/ingest/batch /api/v1/ingest/batch -d '[{}]' --expect 401" \
	"GW=$KEYED r gateway POST /api/v1/ingest /api/v1/ingest -H 'Authorization: Bearer wrong' -d '{}' --expect 401" \
	"GW=$KEYED r gateway GET /api/v1/messages/{id} /api/v1/messages/$ID -H 'Authorization: Basic x' --expect 401" \
	"GW=$KEYED r gateway GET /api/v1/status /api/v1/status -H 'Authorization: Bearer openapi-api-key' --expect 401" \
	"GW=$KEYED r gateway GET /api/v1/status /api/v1/status -H 'Authorization: Bearer openapi-admin-key' --expect 200" \
	"GW=$KEYED r gateway GET /metrics /metrics --expect 401" \
	"GW=$KEYED r gateway GET /metrics /metrics -H 'Authorization: Bearer openapi-admin-key' --expect 200" \
	"GW=$KEYED r gateway GET /health /health --expect 200"

# limited METHOD TEMPLATE PATH [ARGS] : ask until the answer is 429; the
# answers before it (a token came meanwhile) must be as the document says
limited() {
	for _ in 1 2 3 4 5; do
		GW=$LIMITED r gateway "$@" || return 1
		jq -e '.error == "rate limit exceeded"' "$T_TMP/out" >/dev/null &&
			return 0
	done
	return 1
}
# a client that takes every token as it comes, while the checks start
hammer() {
	while :; do
		curl -s -o /dev/null --max-time 2 "$LIMITED/api/v1/messages/x"
	done
}
hammer &
HAMMER_PID=$!
track "$HAMMER_PID"
tap_ok "the gateway with a rate limit: 429 with Retry-After" all \
	"limited POST /api/v1/ingest /api/v1/ingest -d '{}'" \
	"limited POST /api/v1/ingest/batch /api/v1/ingest/batch -d '[{}]'" \
	"limited GET /api/v1/messages/{id} /api/v1/messages/$ID" \
	"limited GET /api/v1/status /api/v1/status" \
	"limited GET /metrics /metrics"
stop_pid "$HAMMER_PID"
stop_pid "$keyed_PID"
stop_pid "$limited_PID"

tap_ok "every status the document lists was seen, every answer as it says" \
	check coverage
tap_done
