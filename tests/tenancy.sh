#!/bin/bash
# Clients of one memory stack with API_KEYS_FILE cannot read or forge each
# other's messages: the same Idempotency-Key from two clients gives two
# ids, and a client that sends another's key first does not take the
# other's message; GET /api/v1/messages/{id} answers a message another
# client sent as it answers an unknown id (404), keyed or not, through one
# processor and through two; an admin key reads all. The client is stored
# with the result (named in the key file, or a name derived from the key
# that does not hold it), shown by diplomctl show, and batches and
# requests the gateway carries together keep their own client's. A
# client's own Diplom-Client header names no one. The same on nats.
. "$(dirname "$0")/lib.sh"

need_tools curl jq sqlite3
need_ctl
tap_plan

new_key() { echo "$1-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"; }
KEY_A=$(new_key a)
KEY_A2=$(new_key a2)
KEY_B=$(new_key b)
KEY_ADMIN=$(new_key admin)
KEYS=$T_TMP/api-keys
ADMIN_KEYS=$T_TMP/admin-keys
{
	echo "# team-a has two keys: one client, one set of ids"
	echo "$KEY_A   team-a"
	echo "sha256:$(printf '%s' "$KEY_A2" | sha256sum | cut -d' ' -f1) team-a"
	echo "$KEY_B"
} >"$KEYS"
echo "$KEY_ADMIN" >"$ADMIN_KEYS"

# req METHOD PATH KEY [CURL ARGS...] : the status; the body in $T_TMP/body
req() {
	local method=$1 path=$2 key=$3
	shift 3
	curl -s --max-time 10 -X "$method" -o "$T_TMP/body" -w '%{http_code}' \
		-H "Authorization: Bearer $key" "$@" "$GW$path"
}
# send KEY DATA [IDEMPOTENCY-KEY [CURL ARGS...]] : the id the gateway answers, or nothing
send() {
	local hdr=()
	[ -n "${3:-}" ] && hdr=(-H "Idempotency-Key: $3")
	[ "$(req POST /api/v1/ingest "$1" "${hdr[@]}" "${@:4}" \
		-d "{\"data\":\"$2\"}")" = 200 ] || return 1
	jq -r .message_id "$T_TMP/body"
}
# get KEY ID [CURL ARGS...] : the status of the client's read of the message
get() { req GET "/api/v1/messages/$2" "$1" "${@:3}"; }
# result_of KEY ID : the result the client reads, once it is processed
result_of() {
	wait_until 10 test "$(get "$1" "$2")" = 200 || return 1
	jq -r .result "$T_TMP/body"
}
client_of() {
	sql "$RESULTS" "SELECT coalesce(client, '(none)') FROM results WHERE message_id = '$1'"
}

stack_ports
export API_KEYS_FILE=$KEYS ADMIN_KEYS_FILE=$ADMIN_KEYS
stack_roles || bail "the stack did not start"

# --- the same key from two clients ------------------------------------------

id_a=$(send "$KEY_A" a-data order-1)
id_b=$(send "$KEY_B" b-data order-1)
tap_ok "two clients' messages with one Idempotency-Key get two ids" \
	eval '[ -n "$id_a" ] && [ -n "$id_b" ] && [ "$id_a" != "$id_b" ]'
tap_ok "each reads its own data as its result" \
	eval '[ "$(result_of "$KEY_A" "$id_a")" = PROCESSED_a-data ] &&
		[ "$(result_of "$KEY_B" "$id_b")" = PROCESSED_b-data ]'
tap_ok "another key of the same client gets the same id and reads it" \
	eval '[ "$(send "$KEY_A2" a-data order-1)" = "$id_a" ] &&
		[ "$(result_of "$KEY_A2" "$id_a")" = PROCESSED_a-data ]'
tap_ok "and is its client's key: another body under it is 422" \
	eval '[ "$(req POST /api/v1/ingest "$KEY_A2" -H "Idempotency-Key: order-1" \
		-d "{\"data\":\"a-again\"}")" = 422 ]'
get "$KEY_A" 00000000-0000-5000-8000-000000000000 >/dev/null
cp "$T_TMP/body" "$T_TMP/unknown"
tap_ok "a client reading another's message gets the 404 of an unknown id" \
	eval '[ "$(get "$KEY_B" "$id_a")" = 404 ] &&
		cmp -s "$T_TMP/body" "$T_TMP/unknown" &&
		! grep -q a-data "$T_TMP/body"'
tap_ok "and the other way round" test "$(get "$KEY_A" "$id_b")" = 404
tap_ok "a client's own Diplom-Client header names no one" \
	eval '[ "$(get "$KEY_B" "$id_a" -H "Diplom-Client: team-a")" = 404 ] &&
		[ "$(send "$KEY_B" b-data order-1 -H "Diplom-Client: team-a")" = "$id_b" ]'

# --- a key sent first by another client ---------------------------------------

id_evil=$(send "$KEY_B" forged order-2)
wait_until 10 test "$(get "$KEY_B" "$id_evil")" = 200
id_real=$(send "$KEY_A" real order-2)
tap_ok "another client's key sent first does not drop the client's message" \
	eval '[ -n "$id_real" ] && [ "$id_real" != "$id_evil" ] &&
		[ "$(result_of "$KEY_A" "$id_real")" = PROCESSED_real ]'

# --- messages without a key ---------------------------------------------------

id_u=$(send "$KEY_A" unkeyed)
tap_ok "a message without a key is its client's only" \
	eval '[ "$(result_of "$KEY_A" "$id_u")" = PROCESSED_unkeyed ] &&
		[ "$(get "$KEY_B" "$id_u")" = 404 ]'

# --- admin keys ---------------------------------------------------------------

tap_ok "an admin key reads every client's messages" \
	eval '[ "$(get "$KEY_ADMIN" "$id_a")" = 200 ] &&
		[ "$(jq -r .client "$T_TMP/body")" = team-a ] &&
		[ "$(get "$KEY_ADMIN" "$id_b")" = 200 ]'
tap_ok "a wrong key is still 401" test "$(get wrong-key "$id_a")" = 401

# --- what is stored, and shown ------------------------------------------------

name_b=$(client_of "$id_b")
tap_ok "the store keeps each row's client by name" \
	test "$(client_of "$id_a")" = team-a
tap_ok "an unnamed key's name is derived, and is not the key" \
	eval '[[ "$name_b" =~ ^key-[0-9a-f]{16}$ ]] &&
		! grep -qF "$name_b" <<<"$KEY_B"'
tap_ok "the answer names the client" \
	eval '[ "$(get "$KEY_B" "$id_b")" = 200 ] &&
		[ "$(jq -r .client "$T_TMP/body")" = "$name_b" ]'
tap_ok "diplomctl show names the client" \
	eval 'exits 0 show "$id_a" && grep -q "^client *team-a$" "$T_TMP/out"'

# --- batches, and requests carried together -----------------------------------

batch() {
	[ "$(req POST /api/v1/ingest/batch "$1" \
		-d "[{\"data\":\"$3\",\"idempotency_key\":\"$2\"},{\"data\":\"y\"}]")" = 200 ] &&
		jq -r '.items[].message_id' "$T_TMP/body"
}
mapfile -t ba < <(batch "$KEY_A" order-1 a-data)
mapfile -t bb < <(batch "$KEY_B" order-1 b-data)
tap_ok "a batch item's key gives its client's id, as a single request's" \
	eval '[ "${ba[0]}" = "$id_a" ] && [ "${bb[0]}" = "$id_b" ]'
wait_until 10 eval '[ "$(get "$KEY_B" "${bb[1]}")" = 200 ]'
tap_ok "a batch's items are its client's" \
	eval '[ "$(client_of "${ba[1]}")" = team-a ] &&
		[ "$(client_of "${bb[1]}")" = "$name_b" ] &&
		[ "$(get "$KEY_A" "${bb[1]}")" = 404 ]'

# many single requests of both at once: the gateway carries them together
# (FORWARD_BATCH), one client's to a batch
curls=()
for i in $(seq 1 40); do
	k=$KEY_A
	[ $((i % 2)) = 0 ] && k=$KEY_B
	curl -s --max-time 10 -H "Authorization: Bearer $k" \
		-d "{\"data\":\"c$i\"}" "$GW/api/v1/ingest" >"$T_TMP/c$i" &
	curls+=($!)
done
# the roles are children too: wait for the clients only
wait "${curls[@]}"
wrong=0
for i in $(seq 1 40); do
	want=team-a
	[ $((i % 2)) = 0 ] && want=$name_b
	id=$(jq -r .message_id "$T_TMP/c$i")
	wait_until 10 test -n "$(client_of "$id")"
	[ "$(client_of "$id")" = "$want" ] || wrong=$((wrong + 1))
done
tap_ok "forty requests of two clients at once: each row is its sender's" \
	test "$wrong" = 0

# --- two processors: each store asked, none answers for another's ------------

stop_stack
PROC2_PORT=$(free_port)
PROC2=http://127.0.0.1:$PROC2_PORT
PROCESSOR_PORT=$PROC2_PORT RESULTS_DB=$T_TMP/results2.db \
	start_role processor2 processor
wait_health "$PROC2" 10 || bail "the second processor did not start"
export PROCESSOR_URL="$PROC,$PROC2"
stack_roles || bail "the stack did not restart"
tap_ok "with two processors, another's message is 404 and one's own 200" \
	eval '[ "$(get "$KEY_B" "$id_a")" = 404 ] &&
		[ "$(get "$KEY_A" "$id_a")" = 200 ] &&
		[ "$(get "$KEY_ADMIN" "$id_b")" = 200 ]'

# --- the nats backend: the client travels in the DataMessage -----------------

stop_stack
stop_pid "$processor2_PID"
if ! command -v nats-server >/dev/null 2>&1; then
	tap_skip "nats: two clients' same key" "nats-server not installed"
	tap_skip "nats: another client's message" "nats-server not installed"
	tap_done
	exit
fi
start_nats || bail "nats-server did not start"
stack_env
stack_roles || bail "the nats stack did not start"
nid_a=$(send "$KEY_A" nats-a order-9)
nid_b=$(send "$KEY_B" nats-b order-9)
tap_ok "nats: two clients' same key, two ids, each reads its own" \
	eval '[ -n "$nid_a" ] && [ -n "$nid_b" ] && [ "$nid_a" != "$nid_b" ] &&
		[ "$(result_of "$KEY_A" "$nid_a")" = PROCESSED_nats-a ] &&
		[ "$(result_of "$KEY_B" "$nid_b")" = PROCESSED_nats-b ]'
tap_ok "nats: another client's message is 404, and the row names its client" \
	eval '[ "$(get "$KEY_B" "$nid_a")" = 404 ] &&
		[ "$(client_of "$nid_a")" = team-a ]'
tap_done
