#!/bin/bash
# Every fuzz seed and every input a fuzzer once crashed on (fuzz/corpus,
# fuzz/regressions) goes through its target's entry function again, built
# without libFuzzer: a crash, or a failed check, fails the test.
. "$(dirname "$0")/lib.sh"

TARGETS="message ingest result config http nats"
tap_plan 6

# replay WHAT : run fuzz/replay_WHAT on the target's seeds and regressions
replay() {
	local what=$1 d dirs=()
	for d in corpus regressions; do
		[ -d "$top_srcdir/fuzz/$d/$what" ] &&
			dirs+=("$top_srcdir/fuzz/$d/$what")
	done
	"$top_builddir/fuzz/replay_$what" "${dirs[@]}" \
		>"$T_TMP/$what.out" 2>"$T_TMP/$what.err"
	local rc=$?
	sed 's/^/# /' "$T_TMP/$what.out"
	if [ "$rc" -ne 0 ]; then
		tail -n 30 "$T_TMP/$what.err" | sed 's/^/# /'
		return 1
	fi
}

for t in $TARGETS; do
	tap_ok "fuzz_$t replays its seeds and regressions" replay "$t"
done
