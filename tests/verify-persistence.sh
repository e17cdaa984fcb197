#!/bin/bash
# scripts/verify-persistence.sh in its short form: every nats scenario
# (processor restart, SIGKILL and crash loop, broker SIGKILL and outage,
# ingest SIGKILL, a processor SIGKILL under batched load, a full and a
# read-only result store, slow processing, a backend switch both ways, a
# three-node cluster losing its stream leader and then another node, and one
# node cut off from the other two) leaves every accepted message with one
# row; so do the memory backend's store faults, ingest SIGKILL and ingest
# SIGKILL under batched load; NATS_MAX_DELIVER
# turns a crash loop into failed rows, not losses; and the verifier can
# fail: a processor SIGKILL on the memory backend loses its backlog, which
# it must report (lost > 0, exit 1).
. "$(dirname "$0")/lib.sh"
need_nats
need_tools jq sqlite3
need_loadgen

VERIFY=$top_srcdir/scripts/verify-persistence.sh
NATS_SCENARIOS="restart crash broker switch disk readonly crashloop ingest batch broker-down slow cluster partition"
MEM_SCENARIOS="disk readonly ingest batch"
# short runs: 300 messages over 2 s per scenario
export DIPLOMD DIPLOM_LOADGEN VERIFY_LOAD_SECONDS=2 TMPDIR=$T_TMP

tap_plan 25

# can_mount_here : root that may mount (the verifier's disk and readonly
# scenarios need it; without it they show n/a)
can_mount_here() {
	mkdir -p "$T_TMP/probe" &&
		mount -t tmpfs -o size=1m tmpfs "$T_TMP/probe" 2>/dev/null &&
		umount "$T_TMP/probe"
}

# row_of FILE SCENARIO : that scenario's table row
row_of() { awk -v s="$2" '$1 == s' "$1"; }

# no_loss FILE SCENARIO : the row is there, something was accepted, every
# accepted message has a row (processed or failed), none has two; a
# scenario that needs root it does not have shows n/a
no_loss() {
	if ! can_mount_here && row_of "$1" "$2" | grep -q 'n/a'; then
		return 0
	fi
	row_of "$1" "$2" | awk '{ ok = ($4 > 0 && $5 + $6 == $4 && $7 == 0 &&
		$8 == 0) } END { exit !(NR == 1 && ok) }'
}

# all_processed FILE SCENARIO : no accepted message ended as failed
all_processed() { row_of "$1" "$2" | awk '{ exit !($6 == 0 && $5 == $4) }'; }

# with a retention, as the package runs: the pruner must not disturb it
RESULTS_RETENTION=1h bash "$VERIFY" --short --messages 300 \
	>"$T_TMP/nats.out" 2>"$T_TMP/verify-nats.log"
rc=$?
sed 's/^/# /' "$T_TMP/nats.out"
tap_ok "nats, all scenarios: exit 0" test "$rc" -eq 0
for s in $NATS_SCENARIOS; do
	tap_ok "nats, $s: every accepted message has one row, lost 0" \
		no_loss "$T_TMP/nats.out" "$s"
done
tap_ok "nats, crashloop: five crashes cost no message its result" \
	all_processed "$T_TMP/nats.out" crashloop

NATS_MAX_DELIVER=2 bash "$VERIFY" --short --messages 300 --scenario crashloop \
	>"$T_TMP/limit.out" 2>"$T_TMP/verify-limit.log"
rc=$?
sed 's/^/# /' "$T_TMP/limit.out"
gave_up() {
	row_of "$T_TMP/limit.out" crashloop |
		awk '{ exit !($4 > 0 && $6 == $4 && $7 == 0) }'
}
tap_ok "NATS_MAX_DELIVER=2, crashloop: exit 0" test "$rc" -eq 0
tap_ok "NATS_MAX_DELIVER=2, crashloop: every message is a failed row" gave_up

bash "$VERIFY" --short --messages 300 --backend memory \
	--scenario "${MEM_SCENARIOS// /,}" \
	>"$T_TMP/mem-ok.out" 2>"$T_TMP/verify-memory-ok.log"
rc=$?
sed 's/^/# /' "$T_TMP/mem-ok.out"
tap_ok "memory, store faults, ingest SIGKILL and batches: exit 0" test "$rc" -eq 0
for s in $MEM_SCENARIOS; do
	tap_ok "memory, $s: every accepted message has one row, lost 0" \
		no_loss "$T_TMP/mem-ok.out" "$s"
done

bash "$VERIFY" --messages 300 --backend memory --scenario crash \
	>"$T_TMP/mem.out" 2>"$T_TMP/verify-memory.log"
rc=$?
sed 's/^/# /' "$T_TMP/mem.out"
tap_ok "memory, crash: exit 1 (the verifier can fail)" test "$rc" -eq 1
reports_loss() {
	row_of "$T_TMP/mem.out" crash |
		awk '{ ok = ($2 == "memory" && $7 > 0 && $5 + $6 + $7 == $4) }
			END { exit !(NR == 1 && ok) }'
}
tap_ok "memory, crash: the loss is reported (lost > 0)" reports_loss
# stale_nft_table : an nft table of a test cluster whose shell has ended
stale_nft_table() {
	local t
	for t in $(nft list tables 2>/dev/null | awk '{ print $3 }'); do
		case $t in
		diplom_test_*) pid_running "${t#diplom_test_}" || return 0 ;;
		esac
	done
	return 1
}
left_nothing() {
	! ls -d "$T_TMP"/diplom-verify-persistence.* >/dev/null 2>&1 &&
		! grep -q "$T_TMP" /proc/mounts &&
		! stale_nft_table
}
tap_ok "the verifier removed its work directories, mounts and nft rules" left_nothing
tap_done
