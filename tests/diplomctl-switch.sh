#!/bin/bash
# diplomctl switch on a local stack whose processor and ingest run as the
# packaged units would (tests/fake-systemctl stands in for systemctl, the
# package's default file with this stack's ports for /etc/default/diplom):
# refused, changing nothing, for a broker without JetStream; memory ->
# nats -> memory while diplom-loadgen --retry posts, every accepted
# message processed, the default file's other lines kept, the gateway
# never restarted; a switch to the backend it runs on restarts nothing.
# The sandbox test (scripts/test-package.sh) does it with systemd.
. "$(dirname "$0")/lib.sh"
need_nats
need_tools jq sqlite3 cmp curl
need_loadgen

need_ctl
FAKE=$top_srcdir/tests/fake-systemctl
RUN=$T_TMP/run
SENT=$T_TMP/sent.db
mkdir -p "$RUN"
tap_plan

start_nats || bail "nats-server did not start"
stack_ports
conf=$T_TMP/diplom.default
# the package's file, this stack's settings below it
{
	sed -e "s|^RESULTS_DB=.*|RESULTS_DB=$RESULTS|" \
		-e "s|^NATS_URL=.*|NATS_URL=$NATS_URL|" \
		"$top_srcdir/debian/diplom.default"
	echo "API_PORT=$API_PORT"
	echo "INGEST_PORT=$INGEST_PORT"
	echo "PROCESSOR_PORT=$PROCESSOR_PORT"
	echo "INGEST_URL=$INGEST_URL"
	echo "PROCESSOR_URL=$PROCESSOR_URL"
	echo "PROCESSING_DELAY_MS=2"
} >"$conf"
cp "$conf" "$T_TMP/diplom.default.orig"
# diplomctl reads the file alone, as it would on the package
unset QUEUE_TYPE INGEST_URL PROCESSOR_URL API_PORT NATS_URL RESULTS_DB
export FAKE_SYSTEMCTL_DIR=$RUN FAKE_SYSTEMCTL_ENV=$conf DIPLOMD

units_stop() {
	"$FAKE" stop diplomd@ingest.service
	"$FAKE" stop diplomd@processor.service
}
T_AT_EXIT=units_stop
"$FAKE" start diplomd@processor.service &&
	"$FAKE" start diplomd@ingest.service || bail "the units did not start"
start_role gateway gateway --api-port="$GW_PORT" --ingest-url="$ING" \
	--processor-url="$PROC"
wait_health "$GW" 10 || bail "the gateway did not start"

# ctl ARGS... : diplomctl on the file, with the stand-in for systemctl
ctl() {
	"$CTL" --config "$conf" "$@" >"$T_TMP/out" 2>"$T_TMP/err"
	CTL_RC=$?
	sed 's/^/#   /' "$T_TMP/err"
	return $CTL_RC
}
pid_of() { cat "$RUN/$1.pid"; }
backend_of() { curl -s "$1/admin" | jq -r .backend; }

tap_ok "status reads the file and exits 0" \
	eval 'ctl status --interval 0 && grep -q "^backend *memory" "$T_TMP/out"'

# --- refused ---------------------------------------------------------------------

plain_port=$(free_port)
nats-server -a 127.0.0.1 -p "$plain_port" >"$T_TMP/plain-nats.log" 2>&1 &
plain=$!
track "$plain"
wait_until 5 nats_reachable "nats://127.0.0.1:$plain_port" ||
	bail "nats-server without JetStream did not start"
proc_pid=$(pid_of processor)
refused() {
	ctl switch nats --systemctl="$FAKE" \
		--nats-url="nats://127.0.0.1:$plain_port"
	[ "$CTL_RC" = 1 ] && grep -q "without JetStream" "$T_TMP/err"
}
tap_ok "switch nats refuses a broker without JetStream (exit 1)" refused
tap_ok "and changes nothing: the file, the processor" \
	eval 'cmp -s "$conf" "$T_TMP/diplom.default.orig" &&
	    [ "$(pid_of processor)" = "$proc_pid" ]'
stop_pid "$plain"

# --- memory -> nats -> memory under load -----------------------------------------------

gw_pid=$gateway_PID
"$DIPLOM_LOADGEN" --url "$GW/api/v1/ingest" --duration 14 --rate 200 -c 8 \
	--retry 100 --record "$SENT" --json >"$T_TMP/lg.json" \
	2>"$T_TMP/lg.err" &
lg=$!
track "$lg"
sleep 2
tap_ok "switch nats under load exits 0" ctl switch nats --systemctl="$FAKE"
sed 's/^/#   /' "$T_TMP/out"
tap_ok "processor and ingest run on nats" \
	eval '[ "$(backend_of "$PROC")" = nats ] &&
	    [ "$(backend_of "$ING")" = nats ]'
only_queue_type() {
	diff "$T_TMP/diplom.default.orig" "$conf" | grep '^[<>]' |
		tr '\n' ' ' | grep -qx "> QUEUE_TYPE=$1 "
}
tap_ok "the file has QUEUE_TYPE=nats below its comment, nothing else changed" \
	eval 'only_queue_type nats &&
	    grep -A1 -x "#QUEUE_TYPE=memory" "$conf" | grep -qx QUEUE_TYPE=nats'
sleep 3
tap_ok "switch memory under load exits 0" ctl switch memory --systemctl="$FAKE"
tap_ok "processor and ingest run on memory" \
	eval '[ "$(backend_of "$PROC")" = memory ] &&
	    [ "$(backend_of "$ING")" = memory ]'
tap_ok "the file has QUEUE_TYPE=memory, nothing else changed" \
	only_queue_type memory
wait "$lg"
untrack "$lg"
tap_note "loadgen: $(jq -c '{sent, accepted, errors}' "$T_TMP/lg.json")"
tap_ok "every message was accepted (the clients retried)" \
	eval 'jq -e ".accepted == .sent" "$T_TMP/lg.json" >/dev/null'
lost() {
	sqlite3 -batch -noheader "$SENT" "ATTACH '$RESULTS' AS r;
	    SELECT count(*) FROM sent WHERE message_id NOT IN
	    (SELECT message_id FROM r.results WHERE success = 1)"
}
tap_ok "every accepted message is processed" \
	wait_until 20 eval '[ "$(lost)" = 0 ]'
tap_ok "the gateway was never restarted" kill -0 "$gw_pid"

# --- already there -----------------------------------------------------------------

proc_pid=$(pid_of processor)
tap_ok "switch memory on memory says so and exits 0" \
	eval 'ctl switch memory --systemctl="$FAKE" &&
	    grep -q "already on memory" "$T_TMP/err"'
tap_ok "and restarts nothing" test "$(pid_of processor)" = "$proc_pid"

tap_done
