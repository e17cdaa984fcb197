#!/bin/bash
# scripts/verify-persistence.sh on a small run: every nats scenario (processor
# restart and SIGKILL, broker SIGKILL, backend switch both ways) loses
# nothing, and the verifier can fail: a processor SIGKILL on the memory
# backend loses its backlog, which it must report (lost > 0, exit 1).
. "$(dirname "$0")/lib.sh"
need_nats
need_tools jq sqlite3
need_loadgen

VERIFY=$top_srcdir/scripts/verify-persistence.sh
# short runs: 300 messages over 2 s per scenario
export DIPLOMD DIPLOM_LOADGEN VERIFY_LOAD_SECONDS=2 TMPDIR=$T_TMP

tap_plan 8

# row_of FILE SCENARIO : that scenario's table row
row_of() { awk -v s="$2" '$1 == s' "$1"; }

# no_loss FILE SCENARIO : the row is there, something was accepted, nothing
# accepted is missing and no message has two rows
no_loss() {
	row_of "$1" "$2" | awk '{ ok = ($4 > 0 && $6 == 0 && $7 == 0 && $5 == $4) }
		END { exit !(NR == 1 && ok) }'
}

bash "$VERIFY" --messages 300 >"$T_TMP/nats.out" 2>"$T_TMP/verify-nats.log"
rc=$?
sed 's/^/# /' "$T_TMP/nats.out"
tap_ok "nats, all scenarios: exit 0" test "$rc" -eq 0
for s in restart crash broker switch; do
	tap_ok "nats, $s: every accepted message processed, lost 0" \
		no_loss "$T_TMP/nats.out" "$s"
done

bash "$VERIFY" --messages 300 --backend memory --scenario crash \
	>"$T_TMP/mem.out" 2>"$T_TMP/verify-memory.log"
rc=$?
sed 's/^/# /' "$T_TMP/mem.out"
tap_ok "memory, crash: exit 1 (the verifier can fail)" test "$rc" -eq 1
reports_loss() {
	row_of "$T_TMP/mem.out" crash |
		awk '{ ok = ($2 == "memory" && $6 > 0 && $5 + $6 == $4) }
			END { exit !(NR == 1 && ok) }'
}
tap_ok "memory, crash: the loss is reported (lost > 0)" reports_loss
left_nothing() {
	! ls -d "$T_TMP"/diplom-verify-persistence.* >/dev/null 2>&1
}
tap_ok "the verifier removed its work directories" left_nothing
tap_done
