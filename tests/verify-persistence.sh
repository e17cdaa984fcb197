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

# the verifier's progress logs (stderr) with a failed check, shown at the end
EXPLAIN=""

# check LOG DESCRIPTION CMD... : tap_ok; when it fails, LOG (the progress
# of the verifier run it checks) is shown at the end
check() {
	local log=$1 desc=$2
	shift 2
	if "$@"; then
		tap_pass "$desc"
		return 0
	fi
	tap_fail "$desc"
	case " $EXPLAIN " in *" $log "*) ;; *) EXPLAIN="$EXPLAIN $log" ;; esac
	return 1
}

# failed_sections LOG : the verifier's progress without the sections of
# the scenarios that passed (each section runs from its "NAME (backend):"
# line to the next, a failed one has a HARNESS ERROR or LOSS verdict); all
# of it when none failed, since then the sections do not say why
failed_sections() {
	if ! grep -q -E 'verdict: (HARNESS ERROR|LOSS)' "$1"; then
		cat "$1"
		return
	fi
	awk '/^\[[0-9:]+\] [a-z-]+ \(/ {
			if (bad) printf "%s", buf
			buf = ""; bad = 0; insec = 1
		}
		/^\[[0-9:]+\] verify-persistence: / {
			if (bad) printf "%s", buf
			buf = ""; bad = 0; insec = 0
		}
		!insec { print; next }
		{ buf = buf $0 "\n" }
		/verdict: (HARNESS ERROR|LOSS)/ { bad = 1 }
		END { if (bad) printf "%s", buf }' "$1"
}

# explain : after the checks, the progress logs of the runs that failed
# one, as TAP comments, and last (what a CI log's tail keeps) the failed
# verdicts; the logs are then moved aside, so that the harness's exit does
# not repeat their tails
explain() {
	local log
	[ -n "$EXPLAIN" ] || return 0
	for log in $EXPLAIN; do
		echo "# --- ${log##*/}: the verifier's progress (scenarios that failed)"
		failed_sections "$log" | sed 's/^/#   /'
	done
	echo "# --- verdicts of the failed scenarios"
	for log in $EXPLAIN; do
		grep -E 'verdict: (HARNESS ERROR|LOSS)' "$log" |
			sed "s|^|#   ${log##*/}: |"
	done
	for log in "$T_TMP"/verify-*.log; do
		mv -f "$log" "$log.shown"
	done
}

# with a retention, as the package runs: the pruner must not disturb it
RESULTS_RETENTION=1h bash "$VERIFY" --short --messages 300 \
	>"$T_TMP/nats.out" 2>"$T_TMP/verify-nats.log"
rc=$?
sed 's/^/# /' "$T_TMP/nats.out"
LOG=$T_TMP/verify-nats.log
check "$LOG" "nats, all scenarios: exit 0" test "$rc" -eq 0
for s in $NATS_SCENARIOS; do
	check "$LOG" "nats, $s: every accepted message has one row, lost 0" \
		no_loss "$T_TMP/nats.out" "$s"
done
check "$LOG" "nats, crashloop: five crashes cost no message its result" \
	all_processed "$T_TMP/nats.out" crashloop

NATS_MAX_DELIVER=2 bash "$VERIFY" --short --messages 300 --scenario crashloop \
	>"$T_TMP/limit.out" 2>"$T_TMP/verify-limit.log"
rc=$?
sed 's/^/# /' "$T_TMP/limit.out"
gave_up() {
	row_of "$T_TMP/limit.out" crashloop |
		awk '{ exit !($4 > 0 && $6 == $4 && $7 == 0) }'
}
LOG=$T_TMP/verify-limit.log
check "$LOG" "NATS_MAX_DELIVER=2, crashloop: exit 0" test "$rc" -eq 0
check "$LOG" "NATS_MAX_DELIVER=2, crashloop: every message is a failed row" gave_up

bash "$VERIFY" --short --messages 300 --backend memory \
	--scenario "${MEM_SCENARIOS// /,}" \
	>"$T_TMP/mem-ok.out" 2>"$T_TMP/verify-memory-ok.log"
rc=$?
sed 's/^/# /' "$T_TMP/mem-ok.out"
LOG=$T_TMP/verify-memory-ok.log
check "$LOG" "memory, store faults, ingest SIGKILL and batches: exit 0" test "$rc" -eq 0
for s in $MEM_SCENARIOS; do
	check "$LOG" "memory, $s: every accepted message has one row, lost 0" \
		no_loss "$T_TMP/mem-ok.out" "$s"
done

bash "$VERIFY" --messages 300 --backend memory --scenario crash \
	>"$T_TMP/mem.out" 2>"$T_TMP/verify-memory.log"
rc=$?
sed 's/^/# /' "$T_TMP/mem.out"
LOG=$T_TMP/verify-memory.log
check "$LOG" "memory, crash: exit 1 (the verifier can fail)" test "$rc" -eq 1
reports_loss() {
	row_of "$T_TMP/mem.out" crash |
		awk '{ ok = ($2 == "memory" && $7 > 0 && $5 + $6 + $7 == $4) }
			END { exit !(NR == 1 && ok) }'
}
check "$LOG" "memory, crash: the loss is reported (lost > 0)" reports_loss
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
explain
tap_done
