#!/bin/bash
# Every role on HTTPS: messages flow over verified https hops, only TLS 1.2
# and 1.3 are spoken, plain HTTP to the port fails without harm, a peer
# whose certificate does not verify is an error the gateway logs, and
# SIGHUP serves a new certificate to new connections while an open one
# goes on.
. "$(dirname "$0")/lib.sh"

need_tools openssl curl jq

tap_plan 17

PKI=$T_TMP/pki
mkdir -p "$PKI"

# ca NAME : a throwaway CA, NAME.pem and NAME.key
ca() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$PKI/$1.key" -out "$PKI/$1.pem" -days 2 \
		-subj "/CN=diplom test $1" 2>/dev/null
}
# leaf NAME SERIAL : a certificate for 127.0.0.1 and localhost, signed by ca
leaf() {
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$PKI/$1.key" -out "$PKI/$1.csr" -subj /CN=127.0.0.1 \
		2>/dev/null &&
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$PKI/ext" &&
	openssl x509 -req -in "$PKI/$1.csr" -CA "$PKI/ca.pem" \
		-CAkey "$PKI/ca.key" -set_serial "$2" -days 2 \
		-extfile "$PKI/ext" -out "$PKI/$1.pem" 2>/dev/null
}
{ ca ca && ca other && leaf one 1001 && leaf two 2002; } ||
	bail "cannot make the test certificates"
cp "$PKI/one.pem" "$PKI/server.pem"
cp "$PKI/one.key" "$PKI/server.key"

stack_ports
GW=https://127.0.0.1:$GW_PORT
ING=https://127.0.0.1:$ING_PORT
PROC=https://127.0.0.1:$PROC_PORT
export INGEST_URL=$ING PROCESSOR_URL=$PROC \
	TLS_CERT_FILE=$PKI/server.pem TLS_KEY_FILE=$PKI/server.key \
	TLS_CA_FILE=$PKI/ca.pem
# the curl of lib.sh's helpers trusts the test CA (diplomd's libcurl reads
# no such variable: it has TLS_CA_FILE)
export CURL_CA_BUNDLE=$PKI/ca.pem
stack_roles || bail "the stack did not start on HTTPS"

# serial_of PORT : the serial of the certificate a new connection gets
serial_of() {
	openssl s_client -connect "127.0.0.1:$1" -CAfile "$PKI/ca.pem" \
		</dev/null 2>/dev/null | openssl x509 -noout -serial 2>/dev/null
}

# --- the stack over https ----------------------------------------------------

all_https() {
	[ "$(http_code "$GW/health")" = 200 ] &&
	[ "$(http_code "$ING/health")" = 200 ] &&
	[ "$(http_code "$PROC/health")" = 200 ] &&
	grep -q 'listening on .* (HTTPS)' "$T_TMP/processor.log"
}
tap_ok "every role answers over HTTPS, verified against the test CA" all_https

flows() {
	send_n 5 tls "$T_TMP/sent"
	[ "$(accepted_in "$T_TMP/sent")" -eq 5 ] &&
		wait_until 10 all_processed "$T_TMP/sent"
}
tap_ok "messages flow end to end over https hops" flows

status_over_https() {
	curl -s --max-time 5 "$GW/api/v1/status" |
		jq -e '.ingest.healthy and .processor.healthy' >/dev/null
}
tap_ok "the gateway reaches ingest and the processor over https" \
	status_over_https

# --- versions ----------------------------------------------------------------

tls_version() {
	curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" "$ING/health"
}
tap_ok "TLS 1.3 is spoken" [ "$(tls_version --tlsv1.3)" = 200 ]
tap_ok "TLS 1.2 is spoken" \
	[ "$(tls_version --tlsv1.2 --tls-max 1.2)" = 200 ]

# A client that may offer old versions (security level 0): 1.2 with it
# works, so its 1.1 failing is the server's refusal, not the client's.
s_client_with() {
	echo | timeout 5 openssl s_client -connect "127.0.0.1:$ING_PORT" \
		-CAfile "$PKI/ca.pem" -cipher 'DEFAULT:@SECLEVEL=0' "$@" \
		>"$T_TMP/sc.out" 2>&1
}
tap_ok "the old-version client gets TLS 1.2 through" s_client_with -tls1_2
tls11_refused() {
	! s_client_with -tls1_1 &&
		grep -q 'no peer certificate available' "$T_TMP/sc.out" &&
		grep -q 'Cipher is (NONE)' "$T_TMP/sc.out"
}
tap_ok "TLS 1.1 is refused" tls11_refused
tap_ok "curl with --tls-max 1.1 fails" \
	[ "$(tls_version --tlsv1.0 --tls-max 1.1)" = 000 ]

# --- plain HTTP to the TLS port -------------------------------------------------

plain_fails() {
	local i
	for i in $(seq 20); do
		[ "$(http_code "http://127.0.0.1:$ING_PORT/health" 2)" = 000 ] ||
			return 1
	done
	printf 'POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}' |
		timeout 3 bash -c "cat >/dev/tcp/127.0.0.1/$ING_PORT" 2>/dev/null
	true
}
tap_ok "plain HTTP to the TLS port gets no answer" plain_fails
tap_ok "ingest stays healthy after plain HTTP" \
	eval 'pid_running "$ingest_PID" && [ "$(http_code "$ING/health")" = 200 ]'

# --- a peer that does not verify ------------------------------------------------

BAD_PORT=$(free_port)
API_PORT=$BAD_PORT TLS_CA_FILE=$PKI/other.pem start_role badgw gateway
wait_health "https://127.0.0.1:$BAD_PORT" 10
not_verified() {
	local code
	code=$(curl -s -o "$T_TMP/bad.out" -w '%{http_code}' --max-time 10 \
		-H 'Content-Type: application/json' -d '{"data":"x"}' \
		"https://127.0.0.1:$BAD_PORT/api/v1/ingest")
	tap_note "a gateway trusting another CA answered $code: $(cat "$T_TMP/bad.out")"
	case $code in 502|503) ;; *) return 1 ;; esac
	wait_until 5 grep -q 'did not verify' "$T_TMP/badgw.log"
}
tap_ok "a gateway that cannot verify ingest answers an error and logs it" \
	not_verified

# --- start failures ---------------------------------------------------------------

# fails_naming WHAT ENV... : a processor with ENV does not start and says WHAT
fails_naming() {
	local what=$1
	shift
	! env PROCESSOR_PORT="$(free_port)" RESULTS_DB="$T_TMP/x.db" "$@" \
		timeout 10 "$DIPLOMD" --role=processor >"$T_TMP/fail.log" 2>&1 &&
		grep -q -- "$what" "$T_TMP/fail.log"
}
tap_ok "a certificate without its key is a start failure naming both" \
	fails_naming 'TLS_CERT_FILE and TLS_KEY_FILE' TLS_KEY_FILE=
tap_ok "a key that is not the certificate's is a start failure naming it" \
	fails_naming "$PKI/two.key" TLS_KEY_FILE="$PKI/two.key"

# --- SIGHUP: a new certificate ----------------------------------------------------

# An open connection: an s_client session fed through a FIFO.
mkfifo "$T_TMP/sess.in"
openssl s_client -connect "127.0.0.1:$PROC_PORT" -CAfile "$PKI/ca.pem" \
	-quiet <"$T_TMP/sess.in" >"$T_TMP/sess.out" 2>"$T_TMP/sess.err" &
SESS=$!
track "$SESS"
exec 7>"$T_TMP/sess.in"
printf 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n' >&7
answers() { [ "$(grep -o 'HTTP/1.1 200' "$T_TMP/sess.out" | wc -l)" -ge "$1" ]; }
wait_until 5 answers 1 || tap_note "the open session got no first answer"
before=$(serial_of "$PROC_PORT")

cp "$PKI/two.pem" "$PKI/server.pem.new"
cp "$PKI/two.key" "$PKI/server.key.new"
mv "$PKI/server.key.new" "$PKI/server.key"
mv "$PKI/server.pem.new" "$PKI/server.pem"
kill -HUP "$processor_PID"
wait_until 5 grep -q 'SIGHUP: reloaded' "$T_TMP/processor.log"

new_cert() {
	tap_note "serial before $before, after $(serial_of "$PROC_PORT")"
	[ "$before" = serial=03E9 ] &&
		[ "$(serial_of "$PROC_PORT")" = serial=07D2 ]
}
tap_ok "after SIGHUP a new connection gets the new certificate" new_cert
old_goes_on() {
	printf 'GET /stats HTTP/1.1\r\nHost: x\r\n\r\n' >&7
	wait_until 5 answers 2
}
tap_ok "a connection opened before the reload still works" old_goes_on
exec 7>&-
tap_note "session: $(tr -d "\r" <"$T_TMP/sess.out" | grep HTTP | tr "\n" " ") $(tr "\n" " " <"$T_TMP/sess.err")"

bad_reload() {
	echo garbage >"$PKI/server.pem"
	kill -HUP "$processor_PID"
	wait_until 5 grep -q 'reload failed.*TLS_CERT_FILE' \
		"$T_TMP/processor.log" &&
		[ "$(serial_of "$PROC_PORT")" = serial=07D2 ]
}
tap_ok "a broken certificate on SIGHUP keeps the one in use, and says why" \
	bad_reload
same_pid() {
	pid_running "$processor_PID" &&
		[ "$(http_code "$PROC/health")" = 200 ] &&
		[ "$(grep -c 'diplomd .* started' "$T_TMP/processor.log")" = 1 ]
}
tap_ok "the processor went on in the same process" same_pid

stop_stack
