#!/bin/bash
# Run the three roles in the foreground on this machine; Ctrl-C stops all.
# Builds first when needed (not when DIPLOMD names a built binary). Pid files
# and the roles' settings go to $DIPLOM_RUN_DIR (default ./run), which
# scripts/switch-queue.sh uses to restart ingest and processor.
set -eu
cd "$(dirname "$0")/.."
if [ -z "${DIPLOMD:-}" ]; then
	scripts/install-deps.sh
	scripts/build.sh
fi
. scripts/switch-lib.sh

RUN_DIR=${DIPLOM_RUN_DIR:-$PWD/run}
mkdir -p "$RUN_DIR"
export RESULTS_DB=${RESULTS_DB:-$RUN_DIR/results.db}
export QUEUE_TYPE=${QUEUE_TYPE:-memory}
export DIPLOMD=${DIPLOMD:-$PWD/src/diplomd}
sw_env_save "$RUN_DIR"

stop_all() {
	trap - INT TERM EXIT
	echo "stopping..." >&2
	# ingest and gateway first, so nothing new enters while the processor drains
	# (switch-queue.sh may have replaced ingest and processor: not our
	# children then, so sw_role_stop polls for them)
	for role in gateway ingest processor; do
		sw_role_stop "$RUN_DIR" "$role" TERM 60 || true
	done
}
trap stop_all INT TERM EXIT

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
