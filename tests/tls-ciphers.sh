#!/bin/bash
# What TLS the listeners agree to by default, with an RSA certificate (the
# one that also allows RSA key exchange): TLS 1.3, and TLS 1.2 only with
# ECDHE and an AEAD suite. Suites without forward secrecy or with CBC and
# SHA-1 are refused. HTTP_TLS_PRIORITIES overrides the default, and one
# GnuTLS cannot read is a start failure that names it.
. "$(dirname "$0")/lib.sh"

need_tools openssl curl

tap_plan 11

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T_TMP/rsa.key" \
	-out "$T_TMP/rsa.pem" -days 2 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 2>/dev/null ||
	bail "cannot make the test certificate"

stack_ports
export TLS_CERT_FILE=$T_TMP/rsa.pem TLS_KEY_FILE=$T_TMP/rsa.key
PROC=https://127.0.0.1:$PROC_PORT
export CURL_CA_BUNDLE=$T_TMP/rsa.pem
start_role processor processor
wait_health "$PROC" 10 || bail "the processor did not start on HTTPS"

# tls12 SUITE [PORT] : a TLS 1.2 handshake offering only SUITE succeeds
# (@SECLEVEL=0: the client itself would offer what the server must refuse)
tls12() {
	echo | timeout 5 openssl s_client -connect "127.0.0.1:${2:-$PROC_PORT}" \
		-tls1_2 -cipher "$1:@SECLEVEL=0" >/dev/null 2>&1
}
for suite in AES128-SHA AES256-SHA AES128-GCM-SHA256 ECDHE-RSA-AES128-SHA \
	DHE-RSA-AES128-GCM-SHA256; do
	tap_ok "TLS 1.2 with $suite is refused" eval "! tls12 $suite"
done
for suite in ECDHE-RSA-AES128-GCM-SHA256 ECDHE-RSA-AES256-GCM-SHA384; do
	tap_ok "TLS 1.2 with $suite is accepted" tls12 "$suite"
done
tls13() {
	echo | timeout 5 openssl s_client -connect "127.0.0.1:$PROC_PORT" \
		-tls1_3 2>/dev/null | grep -q 'New, TLSv1.3'
}
tap_ok "TLS 1.3 is accepted" tls13
preferred() {
	echo | timeout 5 openssl s_client -connect "127.0.0.1:$PROC_PORT" \
		2>/dev/null | grep -q 'New, TLSv1.3'
}
tap_ok "a client offering both gets TLS 1.3" preferred

# the setting overrides the default
P2=$(free_port)
HTTP_TLS_PRIORITIES=NORMAL PROCESSOR_PORT=$P2 RESULTS_DB=$T_TMP/r2.db \
	start_role wide processor
wait_health "https://127.0.0.1:$P2" 10 || bail "the second processor did not start"
tap_ok "HTTP_TLS_PRIORITIES=NORMAL lets AES128-SHA through" tls12 AES128-SHA "$P2"

bad_prio() {
	HTTP_TLS_PRIORITIES='NORMAL:+NO-SUCH-THING' PROCESSOR_PORT=$(free_port) \
		RESULTS_DB=$T_TMP/r3.db timeout 10 "$DIPLOMD" --role=processor \
		>"$T_TMP/bad.out" 2>&1
	local rc=$?
	[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] &&
		grep -q 'HTTP_TLS_PRIORITIES' "$T_TMP/bad.out" &&
		grep -q 'NO-SUCH-THING' "$T_TMP/bad.out"
}
tap_ok "priorities GnuTLS cannot read are a start failure naming them" bad_prio
tap_done
