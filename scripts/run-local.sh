#!/bin/bash
# Run the three roles in the foreground on this machine; Ctrl-C stops all.
# Builds first when needed. Pid files and logs go to $DIPLOM_RUN_DIR
# (default ./run), which scripts/switch-queue.sh uses.
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh

RUN_DIR=${DIPLOM_RUN_DIR:-$PWD/run}
mkdir -p "$RUN_DIR"
export RESULTS_DB=${RESULTS_DB:-$RUN_DIR/results.db}
export QUEUE_TYPE=${QUEUE_TYPE:-memory}
DIPLOMD=${DIPLOMD:-$PWD/src/diplomd}

stop_all() {
	trap - INT TERM EXIT
	echo "stopping..." >&2
	# ingest and gateway first, so nothing new enters while the processor drains
	for role in gateway ingest processor; do
		[ -f "$RUN_DIR/$role.pid" ] || continue
		kill -TERM "$(cat "$RUN_DIR/$role.pid")" 2>/dev/null || true
		wait "$(cat "$RUN_DIR/$role.pid")" 2>/dev/null || true
		rm -f "$RUN_DIR/$role.pid"
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
