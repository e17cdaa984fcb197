#!/bin/bash
# A full disk under the result store is the infrastructure's fault, never
# the messages': the processor holds what it processed, retries the commit,
# says why on /health, takes no more meanwhile, and stores every accepted
# message once space comes back. With NATS nothing is given back to the
# broker for it, so no message runs out of NATS_MAX_DELIVER deliveries.
. "$(dirname "$0")/lib.sh"
need_nats
need_loadgen
store=$T_TMP/store
mkdir -p "$store"
# root, and not under fakeroot: a package build's tests skip this one
[ "$(id -u)" = 0 ] && mount -t tmpfs -o size=8m tmpfs "$store" 2>/dev/null ||
	tap_skip_all "mounting a small filesystem needs root"
unmount_store() { umount "$store" 2>/dev/null; }
T_AT_EXIT=unmount_store
tap_plan 10

# fill / unfill : take every byte the store's filesystem has left, and
# give them back
fill() { dd if=/dev/zero of="$store/fill" bs=64k >/dev/null 2>&1; sync; }
unfill() { rm -f "$store/fill"; }
rows() { sql "$RESULTS" "SELECT count(*) FROM results"; }
health_says() {
	curl -s --max-time 2 "$PROC/health" |
		jq -e --arg w "$1" '.healthy == false and (.reason | contains($w))' \
		>/dev/null
}

# scenario BACKEND BREAK MEND : load while BREAK holds (the disk full), then
# MEND it
scenario() {
	local backend=$1 break=$2 mend=$3 before
	RESULTS=$store/$backend-$break.db
	stack_ports
	export QUEUE_TYPE=$backend NATS_MAX_DELIVER=3 NATS_ACK_WAIT=2s
	stack_roles || bail "the $backend stack did not start"
	send_n 20 "$backend-warm" "$T_TMP/$backend-$break-warm.sent"
	wait_until 10 all_processed "$T_TMP/$backend-$break-warm.sent" ||
		bail "$backend, $break: the first messages were not stored"
	"$break"
	before=$(rows)
	"$DIPLOM_LOADGEN" --url "$GW/api/v1/ingest" -n 300 -c 8 --rate 100 \
		--retry 20 --record "$T_TMP/$backend-$break.sent.db" --json \
		>"$T_TMP/$backend-$break.json" 2>/dev/null
	tap_note "$backend, $break: $(jq -c '{sent, accepted}' "$T_TMP/$backend-$break.json"), rows $before -> $(rows)"
	tap_ok "$backend, $break: /health is 503 naming the result store" \
		wait_until 10 health_says "result store"
	# longer than NATS_MAX_DELIVER ack waits: nothing may run out
	sleep 8
	tap_ok "$backend, $break: nothing was stored or given up meanwhile" \
		test "$(rows)" = "$before"
	"$mend"
	stored() {
		[ "$(sqlite3 -batch -noheader -cmd '.timeout 2000' "$RESULTS" \
			"ATTACH '$T_TMP/$backend-$break.sent.db' AS s;
			SELECT count(*) FROM s.sent WHERE message_id NOT IN
			(SELECT message_id FROM results)")" = 0 ]
	}
	tap_ok "$backend, $break: once mended, every accepted message is stored" \
		wait_until 30 stored
	tap_ok "$backend, $break: healthy again" wait_health "$PROC" 10
	tap_ok "$backend, $break: one row each, no more" test "$(rows)" = \
		"$((before + $(jq .accepted "$T_TMP/$backend-$break.json")))"
	stop_stack
}

start_nats || bail "nats-server did not start"
scenario memory fill unfill
scenario nats fill unfill
tap_done
