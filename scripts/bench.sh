#!/bin/bash
# The benchmark the performance targets are checked with: diplom and the
# thin reference servers of bench/relay.c, in the same run, on this
# machine, everything on free loopback ports (its own nats-server, stacks
# and relays, all ended at exit). Prints a table, writes it as JSON, and
# notes what one message id costs here (bench/uuid-cost.c); asserts
# nothing: it fails only when it cannot run.
#
#   scripts/bench.sh [--short] [--rows LIST] [memory|nats|all]
#
# Rows, always in this order (names for --rows, comma-separated; a family
# name, memory, nats or relay, picks all of its rows; all: every row):
#   relay-2hop     reference: wrk -> A proxy -> B proxy -> C direct
#   memory-single  wrk -t2 -c64 through the gateway, QUEUE_TYPE=memory
#   relay-js       reference: wrk -> A proxy -> B js (sync publish, msg id)
#   nats-single    wrk -t2 -c64 through the gateway, QUEUE_TYPE=nats
#   memory-batch   diplom-loadgen --batch 100 to /api/v1/ingest/batch
#   nats-batch     the same on nats
#   nats-drain     BENCH_BACKLOG messages published with no processor, then
#                  drained: msg/s and the processor's peak RSS
# The old positional memory / nats picks that backend's rows and their
# reference (relay-2hop / relay-js); all (the default) every row.
#
# Every row: BENCH_WARMUP (2) seconds of the same load, discarded, then
# BENCH_SECS (10) measured. wrk rows send bench/ingest.lua's body at 64
# connections; batch rows post BENCH_BATCH (100) messages a request at
# BENCH_BATCH_C (4) requests in flight. CPU per message: utime+stime of
# each process over the window, divided by the messages accepted in it (the
# processor's by those it processed, from the window's start until its
# backlog is empty); for a reference, its hops A, B, C in those columns.
# --short: BENCH_SECS=2 BENCH_WARMUP=1 BENCH_BACKLOG=10000 (BENCH_BACKLOG
# default 100000). The JSON (an array, one object a row) goes to
# BENCH_JSON (./bench.json). The stacks run with QUEUE_SIZE=1000000 and
# PROCESSOR_WORKERS=4 unless set. BENCH_PERF=DIR: with perf installed, a
# profile of each diplomd role over the window of the diplom rows, its
# top 20 in DIR/<row>-<role>.txt (perf.data beside it); perf slows what
# it watches, so keep such a run's figures apart.
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../tests/lib.sh"

usage() { script_help 37; exit "${1:-0}"; }

rows=''
while [ $# -gt 0 ]; do
	case $1 in
	--short) BENCH_SECS=2 BENCH_WARMUP=1 BENCH_BACKLOG=10000 ;;
	--rows) [ $# -ge 2 ] || usage 2; rows=$2; shift ;;
	--rows=*) rows=${1#--rows=} ;;
	-h | --help) usage 0 ;;
	memory) rows=${rows:+$rows,}relay-2hop,memory ;;
	nats) rows=${rows:+$rows,}relay-js,nats ;;
	all) rows=${rows:+$rows,}all ;;
	*) echo "bench.sh: unknown argument '$1'" >&2; usage 2 >&2 ;;
	esac
	shift
done
SECS=${BENCH_SECS:-10}
WARMUP=${BENCH_WARMUP:-2}
BACKLOG=${BENCH_BACKLOG:-100000}
BATCH=${BENCH_BATCH:-100}
BATCH_C=${BENCH_BATCH_C:-4}
JSON_OUT=${BENCH_JSON:-bench.json}
PERF_DIR=${BENCH_PERF:-}
ALL_ROWS="relay-2hop memory-single relay-js nats-single memory-batch
nats-batch nats-drain"
# the processor must keep up with what a memory stack accepts
export QUEUE_SIZE=${QUEUE_SIZE:-1000000}
export PROCESSOR_WORKERS=${PROCESSOR_WORKERS:-4}
export NATS_MAX_MSGS=${NATS_MAX_MSGS:--1}

# wanted ROW : ROW is one of those --rows picked
wanted() {
	local w
	[ -z "$rows" ] && return 0
	for w in ${rows//,/ }; do
		case $w in
		all | "$1" | "${1%%-*}") return 0 ;;
		esac
	done
	return 1
}

for w in ${rows//,/ }; do
	case " all memory nats relay ${ALL_ROWS//$'\n'/ } " in
	*" $w "*) ;;
	*) echo "bench.sh: unknown row '$w'" >&2; usage 2 >&2 ;;
	esac
done

CLK_TCK=$(getconf CLK_TCK)
RELAY=$T_TMP/relay
LUA=$top_srcdir/bench/ingest.lua
ROWS_JSON=$T_TMP/rows.json
: >"$ROWS_JSON"
FAILED_ROWS=''

# --- figures -------------------------------------------------------------------

# calc EXPR : awk arithmetic, printed with up to 6 significant digits;
# empty when an operand is (two blanks in a row) or it divides by zero
calc() {
	case " $1 " in *'  '*) return ;; esac
	awk "BEGIN { printf \"%.6g\", $1 }" 2>/dev/null
}

# ticks PID : CPU time (utime + stime, all threads) of PID in clock ticks
ticks() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }'; }

# us_per_msg TICKS MSGS : microseconds of CPU a message
us_per_msg() {
	[ -n "$1" ] && [ -n "$2" ] && [ "$2" != 0 ] || return 0
	calc "$1 * 1000000 / $CLK_TCK / $2"
}

# to_ms VALUE : wrk's 850.00us / 3.47ms / 1.20s / 1.01m in milliseconds
to_ms() {
	local v=$1
	case $v in
	*us) calc "${v%us} / 1000" ;;
	*ms) calc "${v%ms}" ;;
	*s) calc "${v%s} * 1000" ;;
	*m) calc "${v%m} * 60000" ;;
	esac
}

# now_ns : a monotonic-enough wall clock
now_ns() { date +%s%N; }

# --- the table -----------------------------------------------------------------

FMT='%-15s %-9s %9s %9s %7s %7s %6s %6s %6s %6s %6s %9s %5s\n'
# printf pads by bytes: µs is two
HEAD_FMT='%-15s %-9s %9s %9s %7s %7s %7s %7s %7s %7s %6s %9s %5s\n'

table_header() {
	local commit
	commit=$(git -C "$top_srcdir" rev-parse --short HEAD 2>/dev/null)
	if [ -n "$commit" ] && ! git -C "$top_srcdir" diff --quiet HEAD 2>/dev/null; then
		commit=$commit-dirty
	fi
	echo "# $(nproc) cores, kernel $(uname -r), diplomd" \
		"$("$DIPLOMD" --version | awk '{ print $2 }'), commit" \
		"${commit:-unknown}, $(date -u '+%Y-%m-%d %H:%M UTC');" \
		"${SECS}s a row after ${WARMUP}s of warm-up"
	# shellcheck disable=SC2059 # the format is ours
	printf "$HEAD_FMT" path load msg/s proc/s 'p50 ms' 'p99 ms' 'gw µs' \
		'ing µs' 'prc µs' 'sum µs' ratio 'drain/s' RSS
}

JSON_KEYS='connections batch msg_s processed_msg_s accepted processed secs
p50_ms p99_ms cpu_us_gateway cpu_us_ingest cpu_us_processor cpu_us_sum ratio
drain_msg_s rss_mib'

# emit KEY PATH LOAD NAME=VALUE... : one row of the table and the JSON;
# VALUE a number or empty (null, - in the table)
emit() {
	local key=$1 path=$2 load=$3 kv name value args=()
	local -A v=()
	shift 3
	# every row has the same keys, null where they do not apply
	for name in $JSON_KEYS; do
		v[$name]=''
	done
	for kv in "$@"; do
		v[${kv%%=*}]=${kv#*=}
	done
	for name in $JSON_KEYS "${!v[@]}"; do
		case " ${args[*]} " in *" $name "*) continue ;; esac
		value=${v[$name]}
		args+=(--argjson "$name" "${value:-null}")
	done
	# shellcheck disable=SC2016 # jq's variables
	jq -n -c --arg row "$key" --arg path "$path" --arg load "$load" \
		"${args[@]}" '$ARGS.named' >>"$ROWS_JSON"
	# shellcheck disable=SC2059
	printf "$FMT" "$path" "$load" "$(num "${v[msg_s]:-}" 0)" \
		"$(num "${v[processed_msg_s]:-}" 0)" "$(num "${v[p50_ms]:-}" 2)" \
		"$(num "${v[p99_ms]:-}" 2)" "$(num "${v[cpu_us_gateway]:-}" 1)" \
		"$(num "${v[cpu_us_ingest]:-}" 1)" \
		"$(num "${v[cpu_us_processor]:-}" 1)" \
		"$(num "${v[cpu_us_sum]:-}" 1)" "$(num "${v[ratio]:-}" 2)" \
		"$(num "${v[drain_msg_s]:-}" 0)" "$(num "${v[rss_mib]:-}" 0)"
}

# num VALUE DECIMALS : VALUE rounded for the table, - when empty
num() { if [ -n "$1" ]; then printf "%.${2}f" "$1"; else echo -; fi; }

# row_failed KEY PATH WHY : a row that could not be measured
row_failed() {
	FAILED_ROWS="$FAILED_ROWS $1"
	echo "$2: $3" | sed 's/^/# /'
}

# --- perf ------------------------------------------------------------------------

PERF=''
if [ -n "$PERF_DIR" ]; then
	for p in perf $(compgen -c perf_ | sort -u); do
		if command -v "$p" >/dev/null && "$p" --version >/dev/null 2>&1; then
			PERF=$p
			break
		fi
	done
	if [ -z "$PERF" ]; then
		say "bench: BENCH_PERF set but no working perf (apt-get install linux-perf); no profiles"
	else
		mkdir -p "$PERF_DIR" || exit 1
		PERF_DIR=$(cd "$PERF_DIR" && pwd)
	fi
fi
PERF_PIDS=''
PERF_RUNS=''

# perf_start ROW ROLE PID : profile PID (call graphs) until perf_stop
perf_start() {
	[ -n "$PERF" ] || return 0
	"$PERF" record -g -q -o "$PERF_DIR/$1-$2.data" -p "$3" \
		>"$T_TMP/perf-$1-$2.log" 2>&1 &
	track $!
	PERF_PIDS="$PERF_PIDS $!"
	PERF_RUNS="$PERF_RUNS $1-$2"
}

# perf_stop : end the profiles and write their top 20 (no call graphs)
perf_stop() {
	local p r
	[ -n "$PERF_PIDS" ] || return 0
	for p in $PERF_PIDS; do
		kill -INT "$p" 2>/dev/null
	done
	for p in $PERF_PIDS; do
		pid_wait "$p" 30 || kill -KILL "$p" 2>/dev/null
		untrack "$p"
	done
	for r in $PERF_RUNS; do
		perf_report "$r"
	done
	PERF_PIDS=''
	PERF_RUNS=''
}

# perf_report ROW-ROLE : the top 20 of a profile, without call graphs
perf_report() {
	{
		echo "# $1: perf report --stdio --no-children -g none, top 20"
		"$PERF" report -i "$PERF_DIR/$1.data" --stdio \
			--no-children -g none 2>/dev/null |
			grep -v -e '^#' -e '^$' | head -20
	} >"$PERF_DIR/$1.txt"
}

# --- load -------------------------------------------------------------------------

# wrk_run SECONDS URL OUT : the single-message load, its output in OUT
wrk_run() {
	wrk -t2 -c64 -d"${1}s" --latency -s "$LUA" "$2" >"$3" 2>&1
}

# wrk_figures OUT : sets W_ACCEPTED W_SECS W_P50 W_P99 from wrk's output
wrk_figures() {
	local total dur non2xx
	total=$(awk '/ requests in / { print $1 }' "$1")
	dur=$(awk '/ requests in / { sub(",", "", $4); print $4 }' "$1")
	non2xx=$(awk '/Non-2xx/ { print $NF }' "$1")
	W_ACCEPTED=$(( ${total:-0} - ${non2xx:-0} ))
	W_SECS=$(to_ms "$dur")
	W_SECS=$(calc "$W_SECS / 1000")
	W_P50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$1")")
	W_P99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$1")")
	W_ERRORS=$(awk '/Socket errors/ { print }' "$1")
	[ "${non2xx:-0}" = 0 ] || W_ERRORS="$W_ERRORS non-2xx $non2xx"
}

# loadgen_run SECONDS URL OUT : the batch load, its --json summary in OUT
loadgen_run() {
	"$DIPLOM_LOADGEN" --batch "$BATCH" -c "$BATCH_C" --duration "$1" \
		--url "$2" --json >"$3" 2>"$3.err"
}

# --- the reference chains ------------------------------------------------------------

build_relay() {
	[ -x "$RELAY" ] && return 0
	say "bench: building bench/relay.c"
	# shellcheck disable=SC2046 # pkg-config's words
	cc -O2 -o "$RELAY" "$top_srcdir/bench/relay.c" \
		$(pkg-config --cflags --libs libmicrohttpd libcurl) \
		-lnats -luuid -lpthread >"$T_TMP/relay-build.log" 2>&1 && return 0
	cat "$T_TMP/relay-build.log" >&2
	echo "bench.sh: cannot build bench/relay.c" >&2
	exit 1
}

# relay NAME PORT ARGS... : a relay in the background, pid in NAME_PID,
# answering (404 to a GET) before it returns
relay() {
	local name=$1 port=$2
	shift 2
	"$RELAY" "$port" pool "$@" >"$T_TMP/relay-$name.log" 2>&1 &
	track $!
	eval "${name}_PID=$!"
	wait_http "http://127.0.0.1:$port/" 10 404
}

# bench_relay KEY PATH NAME... : wrk through the chain whose first hop is
# A_PORT; NAME... the hops' variables (A B C), in order
bench_relay() {
	local key=$1 path=$2 h i=0 c0=() c1=() cpu=() sum=0
	shift 2
	local url=http://127.0.0.1:$A_PORT/api/v1/ingest
	wrk_run "$WARMUP" "$url" "$T_TMP/warm.out"
	for h in "$@"; do c0+=("$(ticks "$(eval "echo \$${h}_PID")")"); done
	wrk_run "$SECS" "$url" "$T_TMP/$key.out"
	for h in "$@"; do c1+=("$(ticks "$(eval "echo \$${h}_PID")")"); done
	wrk_figures "$T_TMP/$key.out"
	for i in 0 1 2; do
		if [ "$i" -lt $# ]; then
			cpu+=("$(us_per_msg $(( c1[i] - c0[i] )) "$W_ACCEPTED")")
			sum=$(calc "$sum + ${cpu[i]}")
		else
			cpu+=('')
		fi
	done
	[ -z "$W_ERRORS" ] || echo "# $path: $W_ERRORS"
	REF_MSG_S=$(calc "$W_ACCEPTED / $W_SECS")
	emit "$key" "$path" c=64 connections=64 msg_s="$REF_MSG_S" \
		accepted="$W_ACCEPTED" \
		secs="$W_SECS" p50_ms="$W_P50" p99_ms="$W_P99" \
		cpu_us_gateway="${cpu[0]}" cpu_us_ingest="${cpu[1]}" \
		cpu_us_processor="${cpu[2]}" cpu_us_sum="$sum"
}

row_relay_2hop() {
	build_relay
	A_PORT=$(free_port); B_PORT=$(free_port); C_PORT=$(free_port)
	if relay C "$C_PORT" direct && relay B "$B_PORT" proxy "$C_PORT" &&
		relay A "$A_PORT" proxy "$B_PORT"; then
		bench_relay relay-2hop relay-2hop A B C
		REF_2HOP=$REF_MSG_S
	else
		row_failed relay-2hop relay-2hop "a relay did not start"
	fi
	# shellcheck disable=SC2154 # relay sets them
	stop_pid "$A_PID"; stop_pid "$B_PID"; stop_pid "$C_PID"
}

row_relay_js() {
	build_relay
	fresh_nats relay-js || return 0
	A_PORT=$(free_port); B_PORT=$(free_port)
	if MSGID=1 relay B "$B_PORT" js && relay A "$A_PORT" proxy "$B_PORT"; then
		bench_relay relay-js relay-js A B
		REF_JS=$REF_MSG_S
	else
		row_failed relay-js relay-js "a relay did not start"
	fi
	stop_pid "$A_PID"; stop_pid "$B_PID"
	stop_nats TERM
}

# --- diplom ----------------------------------------------------------------------------

# fresh_nats KEY : a nats-server of its own for this row, new port and store
fresh_nats() {
	if ! required_tools nats-server; then
		row_failed "$1" "$1" "nats-server not installed, skipped"
		return 1
	fi
	NATS_PORT='' # a new port: start_nats picks one
	start_nats "$T_TMP/nats-$1" >/dev/null && return 0
	row_failed "$1" "$1" "nats-server did not start"
	return 1
}

# stack KEY BACKEND : a fresh stack (results database of its own)
stack() {
	RESULTS=$T_TMP/results-$1.db
	QUEUE_TYPE=$2 start_stack >/dev/null && return 0
	row_failed "$1" "$1" "the $2 stack did not start"
	stop_stack
	return 1
}

# processed : the processor's processed count (empty when it does not answer)
processed() { proc_processed "$PROC"; }

# settle : wait until the processor has caught up (up to 300 s)
settle() {
	wait_drained "$PROC" 300 ||
		say "bench: the processor did not catch up within 300 s"
}

# bench_stack KEY PATH LOAD KIND : warm-up, then the measured window, on the
# stack started; KIND wrk or batch
bench_stack() {
	local key=$1 path=$2 load=$3 kind=$4 url
	local g0 i0 p0 n0 t0 g1 i1 n1 t1 p2 n2
	local accepted secs p50 p99 gw ing prc sum msg_s proc_s
	if [ "$kind" = wrk ]; then
		url=$GW/api/v1/ingest
		wrk_run "$WARMUP" "$url" "$T_TMP/warm.out"
	else
		url=$GW/api/v1/ingest/batch
		loadgen_run "$WARMUP" "$url" "$T_TMP/warm.json"
	fi
	settle
	# shellcheck disable=SC2154 # start_stack sets them
	perf_start "$key" gateway "$gateway_PID"
	perf_start "$key" ingest "$ingest_PID"
	perf_start "$key" processor "$processor_PID"
	# perf takes a moment to attach
	[ -z "$PERF" ] || sleep 1
	g0=$(ticks "$gateway_PID"); i0=$(ticks "$ingest_PID")
	p0=$(ticks "$processor_PID"); n0=$(processed); t0=$(now_ns)
	if [ "$kind" = wrk ]; then
		wrk_run "$SECS" "$url" "$T_TMP/$key.out"
	else
		loadgen_run "$SECS" "$url" "$T_TMP/$key.json"
	fi
	g1=$(ticks "$gateway_PID"); i1=$(ticks "$ingest_PID")
	n1=$(processed); t1=$(now_ns)
	perf_stop
	if [ "$kind" = wrk ]; then
		wrk_figures "$T_TMP/$key.out"
		accepted=$W_ACCEPTED secs=$W_SECS p50=$W_P50 p99=$W_P99
		[ -z "$W_ERRORS" ] || echo "# $path: $W_ERRORS"
	else
		accepted=$(loadgen_json "$T_TMP/$key.json" .accepted)
		secs=$(loadgen_json "$T_TMP/$key.json" .elapsed_s)
		p50=$(loadgen_json "$T_TMP/$key.json" .latency_ms.p50)
		p99=$(loadgen_json "$T_TMP/$key.json" .latency_ms.p99)
		if [ -z "$accepted" ]; then
			row_failed "$key" "$path" "diplom-loadgen: $(head -3 "$T_TMP/$key.json.err")"
			return
		fi
		[ "$(loadgen_json "$T_TMP/$key.json" .rejected)" = 0 ] ||
			echo "# $path: $(jq -c '{rejected, rejected_by_status, errors}' \
				"$T_TMP/$key.json")"
	fi
	# what the window's messages cost the processor: until it caught up
	settle
	p2=$(ticks "$processor_PID"); n2=$(processed)
	msg_s=$(calc "$accepted / $secs")
	proc_s=$(calc "(${n1:-0} - ${n0:-0}) * 1000000000 / ($t1 - $t0)")
	gw=$(us_per_msg $((g1 - g0)) "$accepted")
	ing=$(us_per_msg $((i1 - i0)) "$accepted")
	prc=$(us_per_msg $((p2 - p0)) $(( ${n2:-0} - ${n0:-0} )))
	sum=$(calc "$gw + $ing + $prc")
	local ref=''
	case $key in
	memory-single) ref=${REF_2HOP:-} ;;
	nats-single) ref=${REF_JS:-} ;;
	esac
	local conns=64 batch=''
	[ "$kind" = wrk ] || conns=$BATCH_C batch=$BATCH
	emit "$key" "$path" "$load" connections="$conns" batch="$batch" \
		msg_s="$msg_s" processed_msg_s="$proc_s" \
		accepted="$accepted" processed=$(( ${n2:-0} - ${n0:-0} )) \
		secs="$secs" p50_ms="$p50" p99_ms="$p99" cpu_us_gateway="$gw" \
		cpu_us_ingest="$ing" cpu_us_processor="$prc" cpu_us_sum="$sum" \
		ratio="$( [ -n "$ref" ] && calc "$msg_s / $ref")"
}

# row_stack KEY PATH LOAD BACKEND KIND
row_stack() {
	local key=$1 backend=$4
	if [ "$backend" = nats ]; then
		fresh_nats "$key" || return 0
	fi
	if stack "$key" "$backend"; then
		bench_stack "$key" "$2" "$3" "$5"
		stop_stack
	fi
	[ "$backend" = nats ] && stop_nats TERM
	return 0
}

# row_drain : BACKLOG messages published through ingest's batch endpoint
# with no processor, then a processor started: the time until all are
# processed, and its peak RSS
row_drain() {
	local key=nats-drain path='nats drain' pub t0 t_first t1 n ticks1
	fresh_nats "$key" || return 0
	RESULTS=$T_TMP/results-$key.db # stack_env exports it
	stack_env
	start_role ingest ingest
	if ! wait_health "$ING" 10; then
		row_failed "$key" "$path" "ingest did not start"
		stop_pid "$ingest_PID"; stop_nats TERM
		return 0
	fi
	"$DIPLOM_LOADGEN" --batch "$BATCH" -c "$BATCH_C" -n "$BACKLOG" \
		--url "$ING/ingest/batch" --json >"$T_TMP/$key-publish.json" \
		2>"$T_TMP/$key-publish.err"
	stop_pid "$ingest_PID"
	pub=$(loadgen_json "$T_TMP/$key-publish.json" .accepted)
	if [ -z "$pub" ] || [ "$pub" = 0 ]; then
		row_failed "$key" "$path" "nothing published: $(head -3 "$T_TMP/$key-publish.err")"
		stop_nats TERM
		return 0
	fi
	t0=$(now_ns)
	drain_processor_start "$key"
	until [ "$(processed)" -gt 0 ] 2>/dev/null; do
		pid_running "$processor_PID" || break
		sleep 0.01
	done
	t_first=$(now_ns)
	while n=$(processed); [ "${n:-0}" -lt "$pub" ]; do
		pid_running "$processor_PID" || break
		sleep 0.02
	done
	t1=$(now_ns)
	ticks1=$(ticks "$processor_PID")
	if [ "${n:-0}" -lt "$pub" ]; then
		row_failed "$key" "$path" "the processor ended after ${n:-0} of $pub"
		drain_processor_stop "$key"; stop_nats TERM
		return 0
	fi
	emit "$key" "$path" "$(calc "$pub / 1000")k" \
		batch="$BATCH" backlog="$pub" processed="$n" \
		publish_msg_s="$(loadgen_json "$T_TMP/$key-publish.json" .throughput)" \
		cpu_us_processor="$(us_per_msg "$ticks1" "$n")" \
		cpu_us_sum="$(us_per_msg "$ticks1" "$n")" \
		drain_msg_s="$(calc "$pub * 1000000000 / ($t1 - $t0)")" \
		drain_steady_msg_s="$(calc "$pub * 1000000000 / ($t1 - $t_first)")" \
		rss_mib="$(awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' \
			"/proc/$processor_PID/status")"
	drain_processor_stop "$key"
	stop_nats TERM
}

# drain_processor_start KEY : the processor, in processor_PID; when
# profiling, started under perf record, since attaching to it takes
# longer than a short drain lasts
drain_processor_start() {
	DRAIN_PERF_PID=''
	if [ -z "$PERF" ]; then
		start_role processor processor
		return
	fi
	"$PERF" record -g -q -o "$PERF_DIR/$1-processor.data" -- \
		"$DIPLOMD" --role=processor >"$T_TMP/processor.log" 2>&1 &
	DRAIN_PERF_PID=$!
	track "$DRAIN_PERF_PID"
	processor_PID=''
	# perf's child, once it is diplomd
	for _ in $(seq 200); do
		processor_PID=$(ps -o pid= --ppid "$DRAIN_PERF_PID" | tr -d ' ')
		if [ -n "$processor_PID" ] &&
			[ "$(ps -o comm= -p "$processor_PID")" = diplomd ]; then
			track "$processor_PID"
			return
		fi
		sleep 0.05
	done
}

# drain_processor_stop KEY : end the processor (and its profile, written)
drain_processor_stop() {
	[ -z "$processor_PID" ] || stop_pid "$processor_PID"
	[ -n "$DRAIN_PERF_PID" ] || return 0
	# not our child when perf started it: polled, not waited for
	[ -z "$processor_PID" ] || pid_wait "$processor_PID" 30 ||
		kill -KILL "$processor_PID" 2>/dev/null
	pid_wait "$DRAIN_PERF_PID" 30 || kill -KILL "$DRAIN_PERF_PID" 2>/dev/null
	untrack "$DRAIN_PERF_PID"
	perf_report "$1-processor"
}

# --- the run ------------------------------------------------------------------------------

[ -x "$DIPLOMD" ] || { echo "bench.sh: $DIPLOMD not built" >&2; exit 1; }
[ -x "$DIPLOM_LOADGEN" ] || { echo "bench.sh: $DIPLOM_LOADGEN not built" >&2; exit 1; }
for tool in wrk jq curl cc pkg-config; do
	command -v "$tool" >/dev/null ||
		{ echo "bench.sh: $tool not installed" >&2; exit 1; }
done

table_header
for r in $ALL_ROWS; do
	wanted "$r" || continue
	say "bench: $r"
	case $r in
	relay-2hop) row_relay_2hop ;;
	memory-single) row_stack "$r" 'memory single' c=64 memory wrk ;;
	relay-js) row_relay_js ;;
	nats-single) row_stack "$r" 'nats single' c=64 nats wrk ;;
	memory-batch) row_stack "$r" 'memory batch' "$BATCH/c=$BATCH_C" memory batch ;;
	nats-batch) row_stack "$r" 'nats batch' "$BATCH/c=$BATCH_C" nats batch ;;
	nats-drain) row_drain ;;
	esac
done
# what one message id costs, beside the table: a floor under ingest's µs
if cc -O2 -o "$T_TMP/uuid-cost" "$top_srcdir/bench/uuid-cost.c" -luuid \
	>"$T_TMP/uuid-build.log" 2>&1; then
	echo "# one id: $("$T_TMP/uuid-cost")"
else
	cat "$T_TMP/uuid-build.log" >&2
	FAILED_ROWS="$FAILED_ROWS uuid-cost"
fi
jq -s . "$ROWS_JSON" >"$JSON_OUT" || exit 1
echo "# JSON: $JSON_OUT${PERF:+; profiles: $PERF_DIR}"
if [ -n "$FAILED_ROWS" ]; then
	echo "# not measured:$FAILED_ROWS"
	exit 1
fi
