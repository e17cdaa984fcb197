#!/bin/bash
# Run the three roles in the foreground on this machine; Ctrl-C stops all.
# Builds first when needed (not when DIPLOMD names a built binary). Pid files
# and the roles' settings go to $DIPLOM_RUN_DIR (default ./run), which
# scripts/switch-queue.sh uses to restart ingest and processor.
set -eu
# before the harness gives DIPLOMD its default
build=${DIPLOMD:+no}
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../tests/lib.sh"
cd "$top_srcdir"
if [ -z "$build" ]; then
	scripts/install-deps.sh
	scripts/build.sh
fi

RUN_DIR=${DIPLOM_RUN_DIR:-$PWD/run}
mkdir -p "$RUN_DIR"
export RESULTS_DB=${RESULTS_DB:-$RUN_DIR/results.db}
export QUEUE_TYPE=${QUEUE_TYPE:-memory}
export DIPLOMD
run_env_save "$RUN_DIR"

# stop_local : at exit, however it comes (Ctrl-C too), stop the roles by
# their pid files: switch-queue.sh may have replaced ingest and processor,
# which are not our children then
stop_local() {
	echo "stopping..." >&2
	run_stack_stop "$RUN_DIR"
}
T_AT_EXIT=stop_local

start() {
	# $! must be diplomd itself, so its log goes through a substitution
	"$DIPLOMD" --role="$1" 2> >(sed -u "s/^/[$1] /" >&2) &
	echo $! >"$RUN_DIR/$1.pid"
}
start processor
start ingest
start gateway
echo "diplom running (queue: $QUEUE_TYPE); gateway on http://127.0.0.1:${API_PORT:-8080}; Ctrl-C stops" >&2
wait
