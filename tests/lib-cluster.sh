# shellcheck shell=bash
# tests/lib-cluster.sh - a three-node JetStream cluster on this machine, the
# faults a cluster meets (a node killed, a node cut off from its peers) and
# a probe that measures how long clients were refused meanwhile. Sourced
# after tests/lib.sh, whose $T_TMP, track, free_port, say and exit trap it
# uses.
#
# The nodes n1, n2, n3 are hosts of their own: each binds its client,
# route and monitoring ports to its own loopback address, 127.0.1.1 to
# 127.0.1.3 (CLUSTER_NET, default 127.0.1), keeps its own store and log
# under the directory cluster_start was given and runs the package's
# broker settings (systemd/diplom-nats.conf). CLUSTER_URLS lists the three
# client URLs for NATS_URL; cluster_stack_env exports that with
# NATS_REPLICAS=3 and QUEUE_TYPE=nats.
#
# Addresses of their own are not enough for a partition: the kernel gives
# a connection a node dials to a peer the source 127.0.0.1, whichever node
# dials. So each node runs with a group id of its own (setpriv; still
# root) and an nft table, `ip diplom_test_<pid of this shell>`, rewrites
# the source of what a node dials to a peer's route port to the node's own
# address (SNAT by socket group). Every route connection then runs between
# two node addresses, and a partition is plain address rules in the same
# table, dropping route traffic between the cut-off node and the other two
# in both directions before conntrack sees it. Clients (diplomd, on
# 127.0.0.1) are not touched: a node cut off from its peers stays reachable
# by the clients connected to it, which is what a partition between racks
# looks like to them and the case worth testing: the node answers, but
# cannot reach a quorum. Every rule names this cluster's route ports, so a
# run never touches another run's cluster. Without nft (or root) the
# cluster works and partition_node fails.
#
# Cleanup: cluster_start chains cluster_cleanup into the harness's
# T_AT_EXIT (whatever command is there runs first, then the nodes are
# stopped and the nft table deleted), so a test that bails still leaves
# nothing behind. A caller that sets T_AT_EXIT after cluster_start must
# call cluster_cleanup from its own command. cluster_start also deletes the
# tables of earlier runs whose shell is gone (a test killed with SIGKILL).
#
# Functions (N is a node number, 1 to 3):
#   cluster_start DIR          start the three nodes, wait for a meta leader
#   cluster_stop               stop them (SIGTERM), keep their stores
#   cluster_cleanup            stop what runs, delete the nft table
#   cluster_node_kill N        SIGKILL node N
#   cluster_node_start N       start node N again: same store, same ports
#   cluster_wait_current N [S] node N answers and is caught up (/healthz)
#   cluster_stream_leader STR  print the node (n1..n3) that leads stream STR
#   cluster_client_node NAME   print the node a client named NAME uses
#   cluster_stack_env          export NATS_URL, NATS_REPLICAS, QUEUE_TYPE
#   partition_node N           cut node N off from the other two
#   partition_heal             remove the partition
#   watch_503 URL FILE         probe URL/health and URL/stats every 100 ms
#   watch_503_stop             end the probe
#   watch_503_summary FILE     how long /health was not 200, and how long
#                              ingest refused publishes, from the probe
#   ingest_serving URL SECS    wait until ingest accepts messages again
#   accept_gap DB LABEL        the longest pause between two accepts that
#                              diplom-loadgen --record saw, in seconds
#   scenario_cluster DIR       stream leader SIGKILLed, back; another node
#                              SIGKILLed, back (all under load)
#   scenario_partition DIR     one node cut off for PARTITION_SECONDS (20)
#
# Per node N, after cluster_start: CL_ADDR[N], CL_PORT[N] (client),
# CL_RPORT[N] (route), CL_MPORT[N] (monitoring), CL_PID[N] (empty while
# down); files DIR/nN.conf, DIR/nN.log, DIR/nN/ (the store) and DIR/nodes,
# one line per node: "nN PID ADDR CLIENT_PORT ROUTE_PORT MONITOR_PORT".

CLUSTER_NET=${CLUSTER_NET:-127.0.1}
CLUSTER_DIR=""
CLUSTER_URLS=""
CLUSTER_NFT_TABLE="diplom_test_$$"
CLUSTER_NFT=""			# "yes" once the table is there
CLUSTER_PARTITIONED=""		# the node cut off, if any
CLUSTER_PREV_AT_EXIT=""
CL_ADDR=()
CL_PORT=()
CL_RPORT=()
CL_MPORT=()
CL_PID=()
CL_GID=()
WATCH_503_PID=""
# SCENARIO_FIGURES: what the last scenario measured, "name=value" words
SCENARIO_FIGURES=""

# --- ports, monitoring ----------------------------------------------------------

# cluster_free_port : free_port, but none this cluster has picked already
cluster_free_port() {
	local p
	while :; do
		p=$(free_port)
		case " ${CL_PORT[*]} ${CL_RPORT[*]} ${CL_MPORT[*]} " in
		*" $p "*) ;;
		*) echo "$p"; return ;;
		esac
	done
}

# cluster_mon N PATH : GET PATH from node N's monitoring port (empty when it
# does not answer within 2 s)
cluster_mon() {
	curl -s --max-time 2 "http://${CL_ADDR[$1]}:${CL_MPORT[$1]}$2" 2>/dev/null
}

# cluster_meta_leader N : the meta leader node N knows of (empty: none)
cluster_meta_leader() {
	cluster_mon "$1" /jsz | jq -r '.meta_cluster.leader // empty' 2>/dev/null
}

# cluster_has_meta_leader : every running node knows a meta leader
cluster_has_meta_leader() {
	local n
	for n in 1 2 3; do
		[ -n "${CL_PID[$n]}" ] || continue
		[ -n "$(cluster_meta_leader "$n")" ] || return 1
	done
}

# cluster_nodes_file : rewrite DIR/nodes from the variables
cluster_nodes_file() {
	local n
	for n in 1 2 3; do
		echo "n$n ${CL_PID[$n]:--} ${CL_ADDR[$n]} ${CL_PORT[$n]}" \
			"${CL_RPORT[$n]} ${CL_MPORT[$n]}"
	done >"$CLUSTER_DIR/nodes"
}

# --- the nft table ----------------------------------------------------------------

# cluster_nft_sweep : delete the tables of runs whose shell has ended
cluster_nft_sweep() {
	local t
	for t in $(nft list tables ip 2>/dev/null |
		awk '$3 ~ /^diplom_test_[0-9]+$/ { print $3 }'); do
		pid_running "${t#diplom_test_}" && continue
		nft delete table ip "$t" 2>/dev/null &&
			say "cluster: deleted the nft table $t of an ended run"
	done
}

# cluster_nft_setup : the table, with the source rewriting for route
# connections (see the top of this file) and an empty partition chain;
# CLUSTER_NFT=yes when it worked
cluster_nft_setup() {
	local n addrs rports rules=''
	cluster_nft_drop
	command -v nft >/dev/null 2>&1 && command -v setpriv >/dev/null 2>&1 ||
		return 1
	cluster_nft_sweep
	addrs="${CL_ADDR[1]}, ${CL_ADDR[2]}, ${CL_ADDR[3]}"
	rports="${CL_RPORT[1]}, ${CL_RPORT[2]}, ${CL_RPORT[3]}"
	for n in 1 2 3; do
		rules="$rules
		meta skgid ${CL_GID[$n]} ip daddr { $addrs } tcp dport { $rports } snat ip to ${CL_ADDR[$n]}"
	done
	# raw priority: the partition drops packets as they are on the
	# wire, before conntrack undoes the rewriting of a reply
	if nft -f - <<EOF
table ip $CLUSTER_NFT_TABLE {
	chain route_src {
		type nat hook postrouting priority srcnat; policy accept;$rules
	}
	chain partition {
		type filter hook prerouting priority raw; policy accept;
	}
}
EOF
	then
		CLUSTER_NFT=yes
		return 0
	fi
	say "cluster: nft refused the table (root needed); no partitions"
	return 1
}

# cluster_nft_drop : delete this cluster's table, if it is there
cluster_nft_drop() {
	[ -n "$CLUSTER_NFT" ] || return 0
	nft delete table ip "$CLUSTER_NFT_TABLE" 2>/dev/null
	CLUSTER_NFT=""
	CLUSTER_PARTITIONED=""
}

# cluster_nft_gone : no table of this run is left
cluster_nft_gone() {
	! nft list tables ip 2>/dev/null | grep -qw "$CLUSTER_NFT_TABLE"
}

# --- nodes ------------------------------------------------------------------------

# cluster_node_conf N : write DIR/nN.conf
cluster_node_conf() {
	local n=$1 m routes=''
	for m in 1 2 3; do
		[ "$m" = "$n" ] && continue
		routes="$routes
		nats-route://${CL_ADDR[$m]}:${CL_RPORT[$m]}"
	done
	cat >"$CLUSTER_DIR/n$n.conf" <<EOF
# node n$n of a test cluster (tests/lib-cluster.sh)
include diplom-nats.conf
server_name: n$n
listen: ${CL_ADDR[$n]}:${CL_PORT[$n]}
http: ${CL_ADDR[$n]}:${CL_MPORT[$n]}
jetstream {
	store_dir: "$CLUSTER_DIR/n$n"
}
cluster {
	name: diplom_$$
	listen: ${CL_ADDR[$n]}:${CL_RPORT[$n]}
	routes: [$routes
	]
}
EOF
}

# cluster_node_start N : start node N (again: same store, same ports) and
# wait until its client port answers; 1 when it does not within 10 s
cluster_node_start() {
	local n=$1 pid
	if [ -n "$CLUSTER_NFT" ]; then
		setpriv --regid="${CL_GID[$n]}" --clear-groups \
			nats-server -c "$CLUSTER_DIR/n$n.conf" \
			>>"$CLUSTER_DIR/n$n.log" 2>&1 &
	else
		nats-server -c "$CLUSTER_DIR/n$n.conf" \
			>>"$CLUSTER_DIR/n$n.log" 2>&1 &
	fi
	pid=$!
	track "$pid"
	CL_PID[n]=$pid
	cluster_nodes_file
	for _ in $(seq 200); do
		(exec 3<>"/dev/tcp/${CL_ADDR[$n]}/${CL_PORT[$n]}") 2>/dev/null &&
			return 0
		pid_running "$pid" || break
		sleep 0.05
	done
	say "cluster: n$n did not start (log: $CLUSTER_DIR/n$n.log)"
	return 1
}

# cluster_node_kill N : SIGKILL node N and reap it
cluster_node_kill() {
	local n=$1
	[ -n "${CL_PID[$n]}" ] || return 0
	stop_pid "${CL_PID[$n]}" KILL
	CL_PID[n]=""
	cluster_nodes_file
}

# cluster_node_stop N : SIGTERM node N and wait for it (SIGKILL after 10 s)
cluster_node_stop() {
	local n=$1 pid=${CL_PID[$1]}
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	pid_wait "$pid" 10 || kill -KILL "$pid" 2>/dev/null
	{ wait "$pid"; } 2>/dev/null
	untrack "$pid"
	CL_PID[n]=""
	cluster_nodes_file
}

# cluster_at_exit STATUS : T_AT_EXIT while a cluster exists: what was there
# before, then cluster_cleanup
cluster_at_exit() {
	if [ -n "$CLUSTER_PREV_AT_EXIT" ]; then
		"$CLUSTER_PREV_AT_EXIT" "$@"
	fi
	cluster_cleanup
}

# cluster_start DIR : the three nodes (see the top of this file), their
# files under DIR; waits up to 30 s until every node knows a JetStream meta
# leader. Sets CLUSTER_URLS. 1 when the cluster did not form.
cluster_start() {
	local n
	CLUSTER_DIR=$1
	mkdir -p "$CLUSTER_DIR"
	# shellcheck disable=SC2154 # top_srcdir: tests/lib.sh
	cp "$top_srcdir/systemd/diplom-nats.conf" "$CLUSTER_DIR/diplom-nats.conf"
	if [ "$T_AT_EXIT" != cluster_at_exit ]; then
		CLUSTER_PREV_AT_EXIT=$T_AT_EXIT
		T_AT_EXIT=cluster_at_exit
	fi
	CL_PORT=() CL_RPORT=() CL_MPORT=()
	for n in 1 2 3; do
		CL_ADDR[n]=$CLUSTER_NET.$n
		CL_PORT[n]=$(cluster_free_port)
		CL_RPORT[n]=$(cluster_free_port)
		CL_MPORT[n]=$(cluster_free_port)
		# a group of its own, for the source rewriting: high, and
		# apart for concurrent runs (only the port rules must be)
		CL_GID[n]=$((61000 + ($$ % 1000) * 3 + n))
		CL_PID[n]=""
	done
	CLUSTER_URLS="nats://${CL_ADDR[1]}:${CL_PORT[1]},nats://${CL_ADDR[2]}:${CL_PORT[2]},nats://${CL_ADDR[3]}:${CL_PORT[3]}"
	cluster_nft_setup
	for n in 1 2 3; do
		cluster_node_conf "$n"
		cluster_node_start "$n" || return 1
	done
	if ! wait_until 30 cluster_has_meta_leader; then
		say "cluster: no JetStream meta leader within 30 s"
		return 1
	fi
	say "cluster: n1..n3 on ${CL_ADDR[1]}..${CL_ADDR[3]}," \
		"meta leader $(cluster_meta_leader 1)"
}

# cluster_stop : stop the nodes (SIGTERM); stores and files stay
cluster_stop() {
	local n
	for n in 1 2 3; do
		cluster_node_stop "$n"
	done
}

# cluster_cleanup : stop every node still running and delete the nft
# table; safe to call more than once
cluster_cleanup() {
	watch_503_stop
	if [ -n "$CLUSTER_PARTITIONED" ]; then
		say "cluster: removing the partition of $CLUSTER_PARTITIONED"
	fi
	cluster_stop
	cluster_nft_drop
}

# cluster_stack_env : export what the roles need to use the cluster:
# QUEUE_TYPE=nats, NATS_URL=$CLUSTER_URLS, NATS_REPLICAS=3
cluster_stack_env() {
	export QUEUE_TYPE=nats NATS_URL=$CLUSTER_URLS NATS_REPLICAS=3
}

# cluster_healthz N : node N's /healthz is ok: in nats-server 2.9 that is a
# known meta leader and every stream and consumer replica on N current
cluster_healthz() {
	[ -n "${CL_PID[$1]}" ] &&
		[ "$(cluster_mon "$1" /healthz | jq -r '.status // empty' \
			2>/dev/null)" = ok ]
}

# cluster_wait_current N [SECONDS] : wait (60 s) until node N is running,
# knows a meta leader and has caught up with every stream and consumer
cluster_wait_current() {
	local n=$1 secs=${2:-60}
	wait_until "$secs" cluster_healthz "$n" &&
		[ -n "$(cluster_meta_leader "$n")" ]
}

# cluster_stream_leader STREAM : print the node (n1, n2 or n3) that leads
# STREAM, as a majority of the running nodes see it (a node cut off from
# the others may still believe it leads); 1 when there is none
cluster_stream_leader() {
	local stream=$1 n views=''
	for n in 1 2 3; do
		[ -n "${CL_PID[$n]}" ] || continue
		views="$views $(cluster_mon "$n" '/jsz?streams=true' | jq -r \
			--arg s "$stream" '[.account_details[]?.stream_detail[]?
			| select(.name == $s) | .cluster.leader // empty][0]
			// empty' 2>/dev/null)"
	done
	echo "$views" | tr ' ' '\n' | grep -E '^n[1-3]$' | sort | uniq -c |
		awk '$1 >= 2 { print $2; found = 1; exit } END { exit !found }'
}

# cluster_new_stream_leader STREAM OLD SECONDS : wait for a leader of
# STREAM other than OLD; print it, 1 on timeout
cluster_new_stream_leader() {
	local leader
	for _ in $(seq $(($3 * 10))); do
		leader=$(cluster_stream_leader "$1") && [ "$leader" != "$2" ] &&
			{ echo "$leader"; return 0; }
		sleep 0.1
	done
	return 1
}

# cluster_client_node NAME : print the node (nN) where a client connection
# named NAME (diplomd names its own diplom-<role>) is; 1 when none is
cluster_client_node() {
	local n
	for n in 1 2 3; do
		[ -n "${CL_PID[$n]}" ] || continue
		if cluster_mon "$n" '/connz?limit=1024' | jq -e --arg c "$1" \
			'any(.connections[]?; .name == $c)' >/dev/null 2>&1; then
			echo "n$n"
			return 0
		fi
	done
	return 1
}

# --- partitions ---------------------------------------------------------------------

# partition_node N : drop all route traffic between node N and the other
# two, both ways (see the top of this file); clients still reach every node
partition_node() {
	local n=$1 m others='' rports
	if [ -z "$CLUSTER_NFT" ]; then
		say "partition: no nft table (nft and root are needed)"
		return 1
	fi
	for m in 1 2 3; do
		[ "$m" = "$n" ] || others="$others${others:+, }${CL_ADDR[$m]}"
	done
	rports="${CL_RPORT[1]}, ${CL_RPORT[2]}, ${CL_RPORT[3]}"
	nft -f - <<EOF || return 1
add rule ip $CLUSTER_NFT_TABLE partition ip saddr ${CL_ADDR[$n]} ip daddr { $others } tcp dport { $rports } drop
add rule ip $CLUSTER_NFT_TABLE partition ip saddr ${CL_ADDR[$n]} ip daddr { $others } tcp sport { $rports } drop
add rule ip $CLUSTER_NFT_TABLE partition ip saddr { $others } ip daddr ${CL_ADDR[$n]} tcp dport { $rports } drop
add rule ip $CLUSTER_NFT_TABLE partition ip saddr { $others } ip daddr ${CL_ADDR[$n]} tcp sport { $rports } drop
EOF
	CLUSTER_PARTITIONED=n$n
}

# partition_heal : remove every partition rule (the table stays for the
# source rewriting until cluster_cleanup)
partition_heal() {
	[ -n "$CLUSTER_NFT" ] || return 0
	nft flush chain ip "$CLUSTER_NFT_TABLE" partition || return 1
	CLUSTER_PARTITIONED=""
}

# --- the 503 probe --------------------------------------------------------------------

# watch_503 URL FILE : in the background, every 100 ms, GET URL/health and
# URL/stats (neither adds a message) and append "EPOCH CODE FAILED SENT" to
# FILE: the time, /health's status (000: no answer), and ingest's
# TotalFailed and TotalSent, the publishes it refused (503) and those it
# accepted so far (- when absent)
watch_503() {
	local url=$1 file=$2
	: >"$file"
	(
		trap - EXIT INT TERM
		while :; do
			out=$(curl -s --max-time 1 -w '\n%{http_code}\n' \
				"$url/health" "$url/stats" 2>/dev/null)
			code=$(printf '%s\n' "$out" | sed -n 2p)
			failed=$(printf '%s\n' "$out" |
				sed -n 's/.*"TotalFailed": *\([0-9]*\).*/\1/p')
			sent=$(printf '%s\n' "$out" |
				sed -n 's/.*"TotalSent": *\([0-9]*\).*/\1/p')
			echo "$EPOCHREALTIME ${code:-000} ${failed:--} ${sent:--}"
			sleep 0.1
		done >>"$file"
	) &
	WATCH_503_PID=$!
	track "$WATCH_503_PID"
}

# watch_503_stop : end the probe watch_503 started
watch_503_stop() {
	[ -n "$WATCH_503_PID" ] || return 0
	stop_pid "$WATCH_503_PID"
	WATCH_503_PID=""
}

# watch_503_windows FILE : "LONGEST TOTAL" seconds of /health not 200 (a
# window runs from its first such answer to the next 200, or the end)
watch_503_windows() {
	awk '{ t = $1 + 0 }
		$2 != 200 && start == "" { start = t }
		$2 == 200 && start != "" { w = t - start; sum += w
			if (w > max) max = w; start = "" }
		END { if (start != "") { w = t - start; sum += w
			if (w > max) max = w }
			printf "%.1f %.1f\n", max, sum }' "$1"
}

# watch_503_refusing FILE : "LONGEST TOTAL COUNT": the windows in which
# ingest refused publishes and accepted none (from the last probe that saw
# TotalSent grow to the next one, when TotalFailed grew in between), in
# seconds, and how many publishes it refused in all while probed
watch_503_refusing() {
	awk '$3 == "-" || $4 == "-" { next }
		{ t = $1 + 0; f = $3 + 0; a = $4 + 0 }
		!seen { seen = 1; first = f; from = t; f0 = f; last_a = a }
		a > last_a { if (f > f0) { w = t - from; sum += w
				if (w > max) max = w }
			from = t; f0 = f; last_a = a }
		{ last_t = t; last_f = f }
		END { if (seen && last_f > f0) { w = last_t - from; sum += w
				if (w > max) max = w }
			printf "%.1f %.1f %d\n", max, sum, last_f - first }' "$1"
}

# watch_503_summary FILE : one line for a person, from the probe's FILE
watch_503_summary() {
	local hl ht rl rt rc
	read -r hl ht <<<"$(watch_503_windows "$1")"
	read -r rl rt rc <<<"$(watch_503_refusing "$1")"
	echo "/health not 200: longest ${hl} s, total ${ht} s;" \
		"refusing (503) and accepting nothing: longest ${rl} s," \
		"total ${rt} s; $rc publishes refused"
}

# ingest_counts URL : "RECEIVED SENT" from ingest's /stats (empty: no answer)
ingest_counts() {
	curl -s --max-time 2 "$1/stats" 2>/dev/null |
		jq -r '"\(.TotalReceived) \(.TotalSent)"' 2>/dev/null
}

# ingest_serving URL SECONDS : wait until ingest at URL accepts a message
# again (TotalSent grows); 0 then, 2 when no client sends for 3 s (nothing
# to tell), 1 when it still refuses after SECONDS
ingest_serving() {
	local url=$1 secs=$2 rcv sent rcv0 sent0 idle=0
	read -r rcv0 sent0 <<<"$(ingest_counts "$url")"
	for _ in $(seq $((secs * 5))); do
		sleep 0.2
		read -r rcv sent <<<"$(ingest_counts "$url")"
		[ -n "$sent" ] || continue
		[ -n "$sent0" ] || { rcv0=$rcv; sent0=$sent; continue; }
		[ "$sent" -gt "$sent0" ] && return 0
		if [ "$rcv" = "$rcv0" ]; then
			idle=$((idle + 1))
			[ "$idle" -ge 15 ] && return 2
		else
			idle=0
		fi
		rcv0=$rcv
	done
	return 1
}

# accept_gap DB LABEL : the longest pause, in seconds, between two
# consecutive accepts diplom-loadgen --record wrote under LABEL
accept_gap() {
	sqlite3 -batch -noheader -cmd '.timeout 2000' "$1" "
		SELECT printf('%.1f', coalesce(max(gap), 0) / 1000.0) FROM (
		 SELECT accepted_at - lag(accepted_at) OVER (ORDER BY accepted_at)
		  AS gap FROM sent WHERE label = '$2')" 2>/dev/null
}

# --- scenarios ------------------------------------------------------------------------
#
# Contract (scripts/verify-persistence.sh and tests/nats-cluster.sh): a
# scenario runs once the stack uses the cluster (cluster_start,
# cluster_stack_env, the three roles; $GW $ING $PROC their URLs) and
# diplom-loadgen is sending. It does its disruption under that load, says
# (say) what it did and what the 503 probe measured, leaves the figures in
# SCENARIO_FIGURES ("name=value" words) and the probe's samples in
# DIR/watch-503.log, waits until ingest and the processor are healthy
# again, and returns 1 when the disruption itself failed: a node that did
# not come back or catch up, no new leader, a role not healthy within 30 s
# or ingest accepting nothing 60 s after that. The stream is $NATS_STREAM
# (DIPLOM_STREAM by default).
#
# Two windows are measured, because they differ: /health not 200 (ingest
# lost its connection, or the stream when it looked again), and the time
# ingest refused publishes and accepted none, from its /stats counters,
# which is what clients feel. A node cut off from its peers keeps its
# clients connected and ingest's /health 200 while every publish through
# it times out, so only the second window sees a partition.
#
# In scripts/verify-persistence.sh a cluster scenario would, per scenario:
# cluster_start "$dir" in place of start_nats; after stack_ports,
# cluster_stack_env (its stack_start sets NATS_URL from NATS_PORT: that
# must become $CLUSTER_URLS); scenario_cluster "$dir" or scenario_partition
# "$dir" as the disruption; cluster_stop in place of stop_nats. The
# scenarios take 20 to 45 s, so the load must last that long
# (VERIFY_LOAD_SECONDS), or the faults land after it.

# scenario_recovered : ingest and the processor answer /health 200 again,
# and ingest accepts messages again (unless no client is sending)
scenario_recovered() {
	local t0=$EPOCHREALTIME rc
	if ! wait_health "$ING" 30 || ! wait_health "$PROC" 30; then
		say "  ingest or the processor not healthy 30 s after the fault"
		return 1
	fi
	ingest_serving "$ING" 60
	rc=$?
	case $rc in
	0) say "  ingest accepting again $(secs_since "$t0") s later" ;;
	2) say "  (no client sending any more: cannot tell whether ingest" \
		"accepts again)" ;;
	*) say "  ingest still accepts nothing 60 s later"; return 1 ;;
	esac
}

# scenario_kill STREAM N : SIGKILL node N under load, wait for another
# stream leader, CLUSTER_DOWN_SECONDS (3) with the node down, start it
# again and wait until it is current; adds to SCENARIO_FIGURES
scenario_kill() {
	local stream=$1 n=$2 t0 t1 leader
	t0=$EPOCHREALTIME
	cluster_node_kill "$n"
	if ! leader=$(cluster_new_stream_leader "$stream" "n$n" 30); then
		say "  no new leader of $stream within 30 s of n$n's SIGKILL"
		return 1
	fi
	t1=$EPOCHREALTIME
	say "  n$n SIGKILL; stream leader now $leader after" \
		"$(secs_since "$t0") s"
	SCENARIO_FIGURES="$SCENARIO_FIGURES election_n$n=$(secs_between "$t0" "$t1")"
	sleep "${CLUSTER_DOWN_SECONDS:-3}"
	t0=$EPOCHREALTIME
	cluster_node_start "$n" || return 1
	if ! cluster_wait_current "$n" 60; then
		say "  n$n restarted but not current within 60 s"
		return 1
	fi
	say "  n$n restarted, current after $(secs_since "$t0") s"
	SCENARIO_FIGURES="$SCENARIO_FIGURES catchup_n$n=$(secs_since "$t0")"
}

# secs_since EPOCH / secs_between EPOCH EPOCH : seconds, one decimal
secs_since() { secs_between "$1" "$EPOCHREALTIME"; }
secs_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# scenario_figures_503 DIR : stop the probe, say and record its figures
scenario_figures_503() {
	local hl ht rl rt rc
	watch_503_stop
	read -r hl ht <<<"$(watch_503_windows "$1/watch-503.log")"
	read -r rl rt rc <<<"$(watch_503_refusing "$1/watch-503.log")"
	say "  ingest: $(watch_503_summary "$1/watch-503.log")"
	SCENARIO_FIGURES="$SCENARIO_FIGURES health_503_longest=$hl"
	SCENARIO_FIGURES="$SCENARIO_FIGURES health_503_total=$ht"
	SCENARIO_FIGURES="$SCENARIO_FIGURES refused_longest=$rl"
	SCENARIO_FIGURES="$SCENARIO_FIGURES refused_total=$rt refused=$rc"
}

# scenario_cluster DIR : SIGKILL the stream leader, start it again once
# another leads, wait until it is current; then SIGKILL another node (the
# leader at that time if it is not the first one) and do the same
scenario_cluster() {
	local dir=$1 stream=${NATS_STREAM:-DIPLOM_STREAM} first second leader
	local rc=0 t0=$EPOCHREALTIME
	SCENARIO_FIGURES=""
	watch_503 "$ING" "$dir/watch-503.log"
	if ! leader=$(cluster_stream_leader "$stream"); then
		say "  no leader for stream $stream"
		watch_503_stop
		return 1
	fi
	first=${leader#n}
	say "  stream $stream led by $leader; ingest on" \
		"$(cluster_client_node diplom-ingest || echo '?'), processor on" \
		"$(cluster_client_node diplom-processor || echo '?')"
	scenario_kill "$stream" "$first" || rc=1
	if [ "$rc" -eq 0 ]; then
		leader=$(cluster_stream_leader "$stream") || leader=""
		second=${leader#n}
		if [ -z "$second" ] || [ "$second" = "$first" ]; then
			second=$((first % 3 + 1))
		fi
		say "  then n$second (stream leader: ${leader:-none})"
		scenario_kill "$stream" "$second" || rc=1
	fi
	scenario_recovered || rc=1
	scenario_figures_503 "$dir"
	SCENARIO_FIGURES="$SCENARIO_FIGURES seconds=$(secs_since "$t0")"
	return "$rc"
}

# scenario_partition DIR : cut off, for PARTITION_SECONDS (20), the node
# ingest is connected to (PARTITION_NODE=N picks another): it stays
# reachable by ingest but cannot reach a quorum, so ingest is refused
# until the heal. Then heal and wait until the node is current again.
scenario_partition() {
	local dir=$1 stream=${NATS_STREAM:-DIPLOM_STREAM} n node leader half
	local rc=0 t0=$EPOCHREALTIME t1
	SCENARIO_FIGURES=""
	watch_503 "$ING" "$dir/watch-503.log"
	leader=$(cluster_stream_leader "$stream") || leader=none
	if [ -n "${PARTITION_NODE:-}" ]; then
		n=$PARTITION_NODE
	elif node=$(cluster_client_node diplom-ingest); then
		n=${node#n}
	else
		n=${leader#n}
		[ "$n" = none ] && n=1
	fi
	say "  cutting n$n off for ${PARTITION_SECONDS:-20} s (stream" \
		"leader $leader; ingest on" \
		"$(cluster_client_node diplom-ingest || echo '?'), processor on" \
		"$(cluster_client_node diplom-processor || echo '?'))"
	if ! partition_node "$n"; then
		watch_503_stop
		return 1
	fi
	t1=$EPOCHREALTIME
	half=$(( ${PARTITION_SECONDS:-20} / 2 ))
	sleep "$half"
	say "  $half s in: stream leader" \
		"$(cluster_stream_leader "$stream" || echo none)"
	sleep $(( ${PARTITION_SECONDS:-20} - half ))
	partition_heal || rc=1
	say "  healed after $(secs_since "$t1") s"
	t1=$EPOCHREALTIME
	if cluster_wait_current "$n" 60; then
		say "  n$n current again after $(secs_since "$t1") s"
		SCENARIO_FIGURES="catchup_n$n=$(secs_since "$t1")"
	else
		say "  n$n not current within 60 s of the heal"
		rc=1
	fi
	scenario_recovered || rc=1
	scenario_figures_503 "$dir"
	SCENARIO_FIGURES="$SCENARIO_FIGURES seconds=$(secs_since "$t0")"
	return "$rc"
}
