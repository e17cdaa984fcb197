#!/bin/bash
# A NATS server that wants credentials, for each kind it can want (none, a
# user and password, a token, an NKey, a user JWT in operator mode, TLS,
# TLS with a client certificate): with the right ones, messages go through
# gateway, ingest and processor and each reads back by its id; with wrong
# ones, the role logs one line naming the problem and /health is 503 with
# the reason. Also NATS_PASSWORD_FILE, NATS_TOKEN_FILE and a systemd
# credential, settings that cannot work together failing at start, and the
# package's broker (systemd/diplom-nats-auth.conf) with the unit's settings.
. "$(dirname "$0")/lib.sh"
need_nats
need_required_tools openssl python3 jq
if ! python3 -c 'import cryptography' 2>/dev/null; then
	[ "${DIPLOM_REQUIRE_NATS:-0}" = 1 ] &&
		bail "python3-cryptography missing and DIPLOM_REQUIRE_NATS=1"
	tap_skip_all "python3-cryptography not installed"
fi

# start_role sets ingest_PID
ingest_PID=''
tap_plan
K=$T_TMP/keys
mkdir -p "$K"
chmod 700 "$K"
python3 "$top_srcdir/tests/nats-keys.py" nkey "$K" || bail "nats-keys.py nkey"
python3 "$top_srcdir/tests/nats-keys.py" operator "$K" ||
	bail "nats-keys.py operator"

# cert NAME : a key and a certificate for 127.0.0.1 signed by the test CA
cert() {
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$K/$1.key" -out "$K/$1.csr" -subj "/CN=$1" 2>/dev/null &&
		printf 'subjectAltName=IP:127.0.0.1\n' >"$K/$1.ext" &&
		openssl x509 -req -in "$K/$1.csr" -CA "$K/ca.pem" \
			-CAkey "$K/ca.key" -CAcreateserial -days 2 \
			-extfile "$K/$1.ext" -out "$K/$1.pem" 2>/dev/null
}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout "$K/ca.key" -out "$K/ca.pem" -days 2 \
	-subj /CN=diplom-test-ca 2>/dev/null || bail "openssl: no CA"
if ! cert server || ! cert client; then
	bail "openssl: no certificates"
fi
# another CA's client: one the server must refuse
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout "$K/other.key" -out "$K/other.pem" -days 2 \
	-subj /CN=stranger 2>/dev/null || bail "openssl: no stranger"

AUTH_VARS="NATS_USER NATS_PASSWORD NATS_PASSWORD_FILE NATS_TOKEN
NATS_TOKEN_FILE NATS_CREDS NATS_NKEY_SEED NATS_TLS_CA NATS_TLS_CERT
NATS_TLS_KEY CREDENTIALS_DIRECTORY"

# auth VAR=VALUE... : the roles' credentials from now on, and only these
auth() {
	# shellcheck disable=SC2086
	unset $AUTH_VARS
	# shellcheck disable=SC2163 # NAME=VALUE words
	[ $# -eq 0 ] || export "$@"
}

# server KIND BODY : nats-server with JetStream on a new port and store,
# configured with BODY (its authorization); exports NATS_URL
server() {
	local conf=$T_TMP/nats-$1.conf
	stop_nats TERM
	NATS_PORT=$(free_port)
	export NATS_URL=nats://127.0.0.1:$NATS_PORT
	{
		echo "listen: 127.0.0.1:$NATS_PORT"
		echo "max_payload: 2MB"
		echo "jetstream { store_dir: \"$T_TMP/store-$1\" }"
		echo "$2"
	} >"$conf"
	nats-server -c "$conf" >>"$T_TMP/nats-server.log" 2>&1 &
	NATS_PID=$!
	track "$NATS_PID"
	wait_nats_port && return 0
	bail "nats-server ($1) did not start: $(tail -3 "$T_TMP/nats-server.log")"
}

# health_says URL TEXT : /health answers 503 and its reason holds TEXT
health_says() {
	local body reason
	body=$(curl -s --max-time 2 -w ' %{http_code}' "$1/health")
	reason=$(printf '%s' "${body% *}" | jq -r .reason 2>/dev/null)
	[ "${body##* }" = 503 ] && case $reason in *"$2"*) ;; *) false ;; esac
}

# no_secret FILE... : $SECRET is in none of the FILEs
no_secret() {
	local f
	for f in "$@"; do
		not_grep "${SECRET:-no secret here}" "$f" || return 1
	done
}

# refused KIND TEXT LOGTEXT [SECONDS] : ingest alone, with the credentials
# auth set, says TEXT in /health and LOGTEXT in exactly one log line, also
# SECONDS later (a retry that fails the same way is not logged again)
refused() {
	local log=$T_TMP/ingest.log lines
	stack_ports
	start_role ingest ingest
	if ! wait_until 10 health_says "$ING" "$2"; then
		tap_fail "$1: wrong credentials: /health 503 \"$2\""
		tap_note "$(curl -s "$ING/health")"
	else
		tap_pass "$1: wrong credentials: /health 503 \"$2\""
	fi
	sleep "${4:-0}"
	lines=$(grep -c -- "$3" "$log")
	tap_ok "$1: wrong credentials: one log line saying \"$3\"" \
		test "$lines" = 1
	curl -s --max-time 2 "$ING/health" >"$T_TMP/health" || true
	stop_pid "$ingest_PID"
	tap_ok "$1: wrong credentials: no secret in the log or /health" \
		no_secret "$log" "$T_TMP/health"
}

# flows KIND : a full stack with the credentials auth set carries 20
# messages, and each is read back by its id through the gateway
flows() {
	local sent=$T_TMP/sent-$1 code id bad=0
	: >"$sent"
	RESULTS=$T_TMP/results-$1.db
	stack_ports
	if ! stack_roles; then
		tap_fail "$1: right credentials: the stack turns healthy"
		stop_stack
		return
	fi
	tap_pass "$1: right credentials: the stack turns healthy"
	send_n 20 "$1" "$sent"
	if [ "$(accepted_in "$sent")" -eq 20 ] &&
		wait_until 20 all_processed "$sent"; then
		tap_pass "$1: right credentials: 20 messages processed"
	else
		tap_fail "$1: right credentials: 20 messages processed"
		tap_note "accepted $(accepted_in "$sent"), processed" \
			"$(processed_of "$sent")"
	fi
	while read -r code id; do
		[ "$code" = 200 ] || continue
		[ "$(http_code "$GW/api/v1/messages/$id")" = 200 ] ||
			bad=$((bad + 1))
	done <"$sent"
	tap_ok "$1: right credentials: each message reads back by id" \
		test "$bad" = 0 -a -s "$sent"
	stop_stack
	unset RESULTS
}

# --- settings that cannot work are a start failure ----------------------------

# no_start VAR=VALUE... -- TEXT : ingest with these settings exits at once,
# saying TEXT
no_start() {
	local env=() out
	while [ "$1" != -- ]; do env+=("$1"); shift; done
	shift
	out=$(auth "${env[@]}"; stack_ports; QUEUE_TYPE=nats \
		timeout 10 "$DIPLOMD" --role=ingest 2>&1)
	local rc=$?
	[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && case $out in
		*"$1"*) ;; *) echo "# $out" >&2; false ;; esac
}
export QUEUE_TYPE=nats
tap_ok "a password without a user does not start" \
	no_start NATS_PASSWORD=x -- "NATS_PASSWORD is set but NATS_USER is not"
tap_ok "a user and a token do not start" \
	no_start NATS_USER=u NATS_PASSWORD=x NATS_TOKEN=t -- "exclude each other"
tap_ok "a creds file and an NKey seed do not start" \
	no_start NATS_CREDS="$K/user.creds" NATS_NKEY_SEED="$K/user.seed" -- \
	"exclude each other"
tap_ok "a certificate without its key does not start" \
	no_start NATS_TLS_CERT="$K/client.pem" -- "NATS_TLS_KEY is not set"
tap_ok "an unreadable file is named" \
	no_start NATS_TLS_CA="$K/missing.pem" -- "$K/missing.pem"
tap_ok "a seed file without a seed is named" \
	no_start NATS_NKEY_SEED="$K/user.pub" -- "$K/user.pub"

# --- no authorization ----------------------------------------------------------
server none ""
auth
flows none

# --- user and password ---------------------------------------------------------
PW=pw-$RANDOM$RANDOM-ok
server user "authorization { users = [ { user: diplom, password: \"$PW\" } ] }"
SECRET=wrong-$RANDOM$RANDOM
auth NATS_USER=diplom NATS_PASSWORD="$SECRET"
refused user "nats: authorization violation" \
	"authorization violation at nats://127.0.0.1:$NATS_PORT: check NATS_USER" 6
SECRET=$PW
auth NATS_USER=diplom NATS_PASSWORD="$PW"
flows user
printf '%s\n' "$PW" >"$K/password"
auth NATS_USER=diplom NATS_PASSWORD_FILE="$K/password"
flows user-password-file
mkdir -p "$K/credentials"
printf '%s' "$PW" >"$K/credentials/nats-password"
auth NATS_USER=diplom CREDENTIALS_DIRECTORY="$K/credentials"
stack_ports
start_role ingest ingest
tap_ok "user: the systemd credential nats-password is used" \
	wait_http "$ING/health" 10
stop_pid "$ingest_PID"
auth
refused user-none "nats: authorization violation" \
	"the server wants credentials"
# credentials in the URL: shown nowhere
SECRET=url-$RANDOM$RANDOM
NATS_URL=nats://diplom:$SECRET@127.0.0.1:$NATS_PORT
refused user-in-url "nats: authorization violation at nats://127.0.0.1:" \
	"authorization violation at nats://127.0.0.1:$NATS_PORT"
NATS_URL=nats://127.0.0.1:$NATS_PORT

# the server stops taking the password while ingest is connected: once
# nats.c gives up reconnecting, /health says why
auth NATS_USER=diplom NATS_PASSWORD="$PW"
stack_ports
start_role ingest ingest
if wait_health "$ING" 10; then
	sed -i "s/password: \"$PW\"/password: \"changed-$RANDOM\"/" \
		"$T_TMP/nats-user.conf"
	kill -HUP "$NATS_PID"
	tap_ok "user: a password the server no longer takes shows in /health" \
		wait_until 15 health_says "$ING" "nats: authorization violation"
	tap_ok "user: ... and in one log line" \
		test "$(grep -c 'authorization violation' "$T_TMP/ingest.log")" = 1
else
	tap_fail "user: ingest turns healthy before the password changes"
fi
stop_pid "$ingest_PID"

# --- the package's broker: systemd/diplom-nats-auth.conf -----------------------
# as diplom-nats.service runs it: the password in DIPLOM_NATS_PASSWORD (40
# letters, as diplom.postinst makes it), the roles with the unit's
# NATS_USER=diplom and NATS_PASSWORD_FILE
packaged_broker() {
	stop_nats TERM
	NATS_PORT=$(free_port)
	export NATS_URL=nats://127.0.0.1:$NATS_PORT
	env "$@" nats-server -c "$top_srcdir/systemd/diplom-nats-auth.conf" \
		-js -a 127.0.0.1 -p "$NATS_PORT" -sd "$T_TMP/store-packaged" \
		>>"$T_TMP/nats-server.log" 2>&1 &
	NATS_PID=$!
	track "$NATS_PID"
	wait_nats_port
}
no_packaged_broker() {
	! packaged_broker &&
		grep -q "DIPLOM_NATS_PASSWORD" "$T_TMP/nats-server.log"
}
tap_ok "packaged: without DIPLOM_NATS_PASSWORD the broker does not start" \
	no_packaged_broker
PW=$(tr -dc 'A-Za-z' </dev/urandom | head -c 40)
packaged_broker DIPLOM_NATS_PASSWORD="$PW" ||
	bail "nats-server (packaged) did not start: $(tail -3 "$T_TMP/nats-server.log")"
auth
refused packaged-none "nats: authorization violation" \
	"the server wants credentials"
printf '%s\n' "$PW" >"$K/nats-password"
auth NATS_USER=diplom NATS_PASSWORD_FILE="$K/nats-password"
SECRET=$PW
flows packaged
unset SECRET

# --- token -----------------------------------------------------------------------
TOKEN=tok-$RANDOM$RANDOM-ok
server token "authorization { token: \"$TOKEN\" }"
SECRET=bad-$RANDOM$RANDOM
auth NATS_TOKEN="$SECRET"
refused token "nats: authorization violation" "check NATS_TOKEN"
SECRET=$TOKEN
printf '%s\n' "$TOKEN" >"$K/token"
auth NATS_TOKEN_FILE="$K/token"
flows token-file
# the package's unit sets NATS_USER and NATS_PASSWORD_FILE; an operator's
# /etc/default/diplom empties them for a token of their own
token_over_the_unit() {
	local rc=0
	stack_ports
	start_role ingest ingest
	wait_health "$ING" 10 || rc=1
	stop_pid "$ingest_PID"
	return $rc
}
auth NATS_USER= NATS_PASSWORD_FILE= NATS_TOKEN_FILE="$K/token"
tap_ok "token: NATS_USER= and NATS_PASSWORD_FILE= (empty) leave the token alone" \
	token_over_the_unit

# --- NKey ---------------------------------------------------------------------------
server nkey "authorization { users = [ { nkey: $(cat "$K/user.pub") } ] }"
unset SECRET
auth NATS_NKEY_SEED="$K/wrong.seed"
refused nkey "nats: authorization violation" "check NATS_NKEY_SEED"
auth NATS_NKEY_SEED="$K/user.seed"
flows nkey

# --- operator mode: a user JWT and its seed in a creds file ---------------------------
server creds "$(cat "$K/operator.conf")"
auth NATS_CREDS="$K/wrong.creds"
refused creds "nats: authorization violation" "check NATS_CREDS"
auth NATS_CREDS="$K/user.creds"
flows creds

# --- TLS ------------------------------------------------------------------------------
server tls "tls { cert_file: \"$K/server.pem\", key_file: \"$K/server.key\" }"
auth
refused tls-plain "nats: TLS" "nats: TLS"
auth NATS_TLS_CA="$K/ca.pem"
flows tls

# --- TLS with a client certificate, and a user on top ------------------------------
server tls-verify "tls { cert_file: \"$K/server.pem\",
	key_file: \"$K/server.key\", ca_file: \"$K/ca.pem\", verify: true }
	authorization { users = [ { user: diplom, password: \"$PW\" } ] }"
auth NATS_TLS_CA="$K/ca.pem" NATS_USER=diplom NATS_PASSWORD="$PW"
refused tls-no-client-cert "client certificate" "client certificate"
auth NATS_TLS_CA="$K/ca.pem" NATS_TLS_CERT="$K/other.pem" \
	NATS_TLS_KEY="$K/other.key" NATS_USER=diplom NATS_PASSWORD="$PW"
refused tls-stranger-cert "nats: TLS" "nats: TLS"
NATS_URL=tls://127.0.0.1:$NATS_PORT
auth NATS_TLS_CA="$K/ca.pem" NATS_TLS_CERT="$K/client.pem" \
	NATS_TLS_KEY="$K/client.key" NATS_USER=diplom NATS_PASSWORD="$PW"
flows tls-verify
tap_done
