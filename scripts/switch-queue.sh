#!/bin/bash
# Switch a running local stack (scripts/run-local.sh) to another queue
# backend without losing a message:
#   scripts/switch-queue.sh memory|nats
# Stops ingest (the gateway answers 503 meanwhile; clients retry), waits
# until the processor's backlog (GET /stats .queue.CurrentSize) is 0,
# restarts the processor and then ingest with the new QUEUE_TYPE (the
# gateway stays), and prints each role's /health.
#
# The stack is found through $DIPLOM_RUN_DIR (default run/ at the top of
# this tree, as for run-local.sh, which writes the roles' pid files and
# settings there). Restarted roles log
# to $DIPLOM_RUN_DIR/ROLE.log. For nats, a broker must be reachable at
# NATS_URL (default nats://localhost:4222); start one with `nats-server -js`.
# NATS_URL in this script's environment overrides the recorded one.
# Exit status: 0 switched, 1 the switch failed, 2 usage error.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../tests/lib.sh"

bad_usage() {
	echo "usage: $0 memory|nats" >&2
	exit 2
}

[ $# -eq 1 ] || bad_usage
case $1 in
-h | --help) script_help 16; exit 0 ;;
memory | nats) qt=$1 ;;
*) bad_usage ;;
esac

RUN_DIR=${DIPLOM_RUN_DIR:-$top_srcdir/run}
if [ ! -f "$RUN_DIR/env" ] || [ ! -f "$RUN_DIR/processor.pid" ]; then
	echo "switch-queue: no local stack in $RUN_DIR (start one with" \
		"scripts/run-local.sh, or set DIPLOM_RUN_DIR)" >&2
	exit 1
fi
for role in processor ingest; do
	pid=$(run_pid "$RUN_DIR" "$role")
	if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
		echo "switch-queue: $role is not running (pid file $RUN_DIR/$role.pid)" >&2
		exit 1
	fi
done
for tool in curl jq; do
	command -v "$tool" >/dev/null ||
		{ echo "switch-queue: $tool is required" >&2; exit 1; }
done
# refuse before touching the stack when the broker cannot be reached
nats_url=${NATS_URL:-$(run_env_get "$RUN_DIR" NATS_URL nats://localhost:4222)}
if [ "$qt" = nats ] && ! nats_reachable "$nats_url"; then
	echo "switch-queue: no NATS server at $nats_url; start one" \
		"(nats-server -js) and set NATS_URL; nothing changed" >&2
	exit 1
fi
if [ -n "${NATS_URL:-}" ]; then
	run_env_set "$RUN_DIR" NATS_URL "$NATS_URL"
fi

run_switch "$RUN_DIR" "$qt"
rc=$?
run_print_health "$RUN_DIR"
if [ "$rc" -ne 0 ]; then
	echo "switch-queue: switch to $qt failed" >&2
	exit 1
fi
echo "switch-queue: now on $qt" >&2
