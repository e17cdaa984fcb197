#!/bin/bash
# docker-test.sh - build docker/Dockerfile and run docker/docker-compose.yml
# for real, in both modes: up, every service healthy, only the gateway
# published (on 127.0.0.1), messages posted through the gateway and read
# back by id; with QUEUE_TYPE=nats the broker refuses a client without its
# password (a compose secret the roles read from a file, made here in
# $T_TMP), the processor container is restarted and
# SIGKILLed under a recorded load (diplom-loadgen --record, from this host)
# and every accepted id must have its row in the results volume; then
# down -v.  The nats mode runs with docker/monitoring-compose.yml too (its
# Prometheus built from docker/prometheus.Dockerfile, published on
# 127.0.0.1 as well), and asks Prometheus' HTTP API that it scrapes the
# three roles, has loaded monitoring/diplom-rules.yml and has the
# messages in diplom_ingest_accepted_total.
#
#   scripts/docker-test.sh
#
# Needs root and a built tree (diplom-loadgen).  Installs docker.io,
# docker-compose and debootstrap when missing; starts a dockerd when none
# runs (and stops it at the end, undoing its mounts, bridge and iptables
# chains); makes debian:bookworm-slim with debootstrap and docker import
# when the engine has none, and builds a stand-in for nats:2.10-alpine
# when that cannot be pulled (both kept as a cache for the next run).
# Removes what it created: containers, network, volumes, the diplom and
# diplom-prometheus images when there were none before.  Prints TAP; exits non-zero on any failure.
# When Docker cannot run here (no install, no dockerd) the test is skipped,
# unless DIPLOM_REQUIRE_DOCKER=1.
# Environment: DIPLOM_GATEWAY_PORT (8080, or a free port when 8080 is
# taken), DIPLOM_PROMETHEUS_PORT (9090, or a free port), NATS_IMAGE (skip the search for one), DEBIAN_MIRROR, KEEP_STACK=1
# (leave the stack and dockerd up to look around).
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../tests/lib.sh"
# shellcheck source=scripts/docker-lib.sh
. "$(dirname "$0")/docker-lib.sh"

DK_PROJECT=diplom-test
DIPLOM_IMAGE=diplom:latest
PROMETHEUS_IMAGE=diplom-prometheus:latest
MONITORING=monitoring-compose.yml
started=$SECONDS

# --- at exit: everything this script made goes, even after a failure --------

remove_images=''
skipped=''
docker_at_exit() {
	local rc=$1
	if [ -n "${KEEP_STACK:-}" ]; then
		tap_note "KEEP_STACK: stack $DK_PROJECT and dockerd left up"
	elif dk_answers; then
		if [ -n "$(dk_containers)" ]; then
			if [ "$T_FAILED" -ne 0 ] || [ "$rc" -ne 0 ]; then
				dk_compose logs --no-color --tail 30 2>&1 |
					sed 's/^/#   /'
			fi
			dk_compose down -v --remove-orphans -t 10 \
				>/dev/null 2>&1
		fi
		# shellcheck disable=SC2086 # a list of image names
		[ -n "$remove_images" ] &&
			"$DOCKER" rmi $remove_images >/dev/null 2>&1
	fi
	[ -z "${KEEP_STACK:-}" ] && dk_daemon_down "$T_TMP"
	dk_rootfs_remove "$T_TMP/rootfs"
	tap_note "runtime $((SECONDS - started)) s"
	if [ -n "$skipped" ]; then
		tap_note "SKIP"
	elif [ "$T_FAILED" -ne 0 ] || [ "$rc" -ne 0 ]; then
		tap_note "FAIL"
		T_FAILED=1
	else
		tap_note "PASS"
	fi
}
T_AT_EXIT=docker_at_exit

# --- preflight ----------------------------------------------------------------

[ "$(id -u)" = 0 ] || bail "needs root (dockerd, apt-get, debootstrap)"
need_loadgen
for tool in curl jq sqlite3; do
	command -v "$tool" >/dev/null 2>&1 || bail "$tool not found"
done

# cannot_run REASON : Docker itself cannot run on this machine: the whole
# test is skipped, or fails with DIPLOM_REQUIRE_DOCKER=1
cannot_run() {
	if [ -f "$T_TMP/dockerd.log" ]; then
		tail -n 15 "$T_TMP/dockerd.log" | sed 's/^/# dockerd: /'
	fi
	[ "${DIPLOM_REQUIRE_DOCKER:-0}" = 1 ] && bail "$1"
	skipped=1
	tap_skip_all "$1"
}

# must DESCRIPTION CMD... : tap_ok that returns 1 when CMD failed
must() {
	local desc=$1
	shift
	if "$@"; then
		tap_pass "$desc"
	else
		tap_fail "$desc"
		return 1
	fi
}

# phase NAME : note how long the last phase took
phase_at=$SECONDS
phase() {
	tap_note "$1: $((SECONDS - phase_at)) s"
	phase_at=$SECONDS
}

dk_install ||
	cannot_run "apt-get cannot install docker.io, docker-compose, debootstrap"
dk_answers && tap_note "using the dockerd that runs already"
dk_daemon_up "$T_TMP" || cannot_run "no dockerd answers"
tap_plan
[ -s "$T_TMP/dockerd.pid" ] &&
	tap_note "started dockerd, pid $(cat "$T_TMP/dockerd.pid")"
tap_pass "docker.io, docker-compose and debootstrap are installed"
tap_pass "a dockerd answers"
phase "install and dockerd"

dk_image_here "$DK_BASE_IMAGE" && tap_note "reusing $DK_BASE_IMAGE"
must "base image $DK_BASE_IMAGE" dk_base_image "$T_TMP" ||
	bail "no base image"
must "a nats image" dk_nats_image || bail "no nats image"
# the broker's password, the compose secret nats-password
must "a password for the broker" dk_nats_secret "$T_TMP/secrets" ||
	bail "no password for the broker"
tap_note "NATS_IMAGE=$NATS_IMAGE"
phase "base images"

dk_image_here "$DIPLOM_IMAGE" || remove_images=$DIPLOM_IMAGE
if dk_compose build >"$T_TMP/build.out" 2>&1; then
	tap_pass "docker-compose build ($DIPLOM_IMAGE from docker/Dockerfile)"
else
	tail -n 40 "$T_TMP/build.out" | sed 's/^/#   /'
	tap_fail "docker-compose build ($DIPLOM_IMAGE from docker/Dockerfile)"
	bail "no image to run"
fi
phase "build"

dk_image_here "$PROMETHEUS_IMAGE" ||
	remove_images="$remove_images $PROMETHEUS_IMAGE"
if DK_OVERLAYS=$MONITORING dk_compose build prometheus \
    >"$T_TMP/build-prometheus.out" 2>&1; then
	tap_pass "docker-compose build prometheus ($PROMETHEUS_IMAGE)"
else
	tail -n 40 "$T_TMP/build-prometheus.out" | sed 's/^/#   /'
	tap_fail "docker-compose build prometheus ($PROMETHEUS_IMAGE)"
	bail "no Prometheus image to run"
fi
phase "build prometheus"

# host_port VAR DEFAULT WHAT : export VAR, the host port WHAT is published
# on: DEFAULT as the README says, unless it is taken
host_port() {
	local var=$1 default=$2 what=$3 port
	port=${!var:-}
	if [ -z "$port" ]; then
		port=$default
		if dk_port_busy "$port"; then
			port=$(free_port)
			tap_note "port $default is taken on this host;" \
				"$what is published on $port"
		fi
	elif dk_port_busy "$port"; then
		bail "$var=$port is in use on this host"
	fi
	export "$var=$port"
}
host_port DIPLOM_GATEWAY_PORT 8080 "the gateway"
host_port DIPLOM_PROMETHEUS_PORT 9090 "Prometheus"
GW=http://127.0.0.1:$DIPLOM_GATEWAY_PORT
PROM=http://127.0.0.1:$DIPLOM_PROMETHEUS_PORT

# --- checks -------------------------------------------------------------------

# only_gateway_published : the gateway's 8080 on 127.0.0.1 (and
# Prometheus' 9090, when it runs) and nothing else
only_gateway_published() {
	local id name ports ok=0
	for id in $(dk_containers); do
		name=$("$DOCKER" inspect -f '{{.Name}}' "$id")
		ports=$("$DOCKER" port "$id" | tr '\n' ' ')
		case $name in
		*_gateway_*)
			[ "$ports" = "8080/tcp -> 127.0.0.1:$DIPLOM_GATEWAY_PORT " ] ||
				ok=1
			;;
		*_prometheus_*)
			[ "$ports" = "9090/tcp -> 127.0.0.1:$DIPLOM_PROMETHEUS_PORT " ] ||
				ok=1
			;;
		*) [ -z "$ports" ] || ok=1 ;;
		esac
		[ "$ok" = 0 ] || { tap_note "$name publishes $ports"; return 1; }
	done
}

# read_back FILE MODE : every id FILE accepted reads back through the
# gateway as processed, within 30 s
read_back() {
	local file=$1 mode=$2 code id n=0 body want end=$((SECONDS + 30))
	while read -r code id; do
		n=$((n + 1))
		want=PROCESSED_docker-$mode-$n
		while :; do
			body=$(curl -s --max-time 5 "$GW/api/v1/messages/$id")
			[ "$(printf '%s' "$body" | jq -r '"\(.success) \(.result)"' \
				2>/dev/null)" = "true $want" ] && break
			if [ "$SECONDS" -ge "$end" ]; then
				tap_note "$id: ${body:-no answer}"
				return 1
			fi
			sleep 0.2
		done
	done <"$file"
}

# max_payload_set : the broker runs with diplom's max_payload (2 MB)
max_payload_set() {
	dk_compose exec -T nats wget -q -O - http://127.0.0.1:8222/varz |
		grep -q '"max_payload": 2097152'
}

# big_message : a request of nearly MAX_BODY_BYTES (1 MiB), whose
# published message is a third larger (base64), is accepted and processed
big_message() {
	local f=$T_TMP/big.json id len='' end=$((SECONDS + 30))
	printf '{"source":"t","data":"%s","metadata":{}}' \
		"$(head -c 1000000 /dev/zero | tr '\0' x)" >"$f"
	id=$(curl -s --max-time 30 -H 'Content-Type: application/json' \
		--data-binary @"$f" "$GW/api/v1/ingest" | jq -r '.message_id')
	case $id in '' | null) return 1 ;; esac
	while [ "$SECONDS" -lt "$end" ]; do
		len=$(curl -s --max-time 5 "$GW/api/v1/messages/$id" |
			jq -r '.result | length' 2>/dev/null)
		# PROCESSED_ and the data
		[ "$len" = 1000010 ] && return 0
		sleep 0.5
	done
	return 1
}

# results_db : the processor's database in the results volume, on this host
results_db() {
	echo "$("$DOCKER" volume inspect -f '{{.Mountpoint}}' \
		"${DK_PROJECT}_diplom-results")/results.db"
}

# rows_missing DB : accepted ids (sent.txt) without a result row; read
# only while the processor has the database open (its -shm file exists),
# so that nothing is created in the volume with root's ownership
rows_missing() {
	local db=$1
	[ -e "$db-shm" ] || return 1
	sqlite3 -batch -noheader -readonly -cmd '.timeout 5000' "$db" \
		'SELECT message_id FROM results' 2>/dev/null |
		sort >"$T_TMP/rows.txt" || return 1
	MISSING=$(comm -23 "$T_TMP/sent.txt" "$T_TMP/rows.txt" | wc -l)
	[ "$MISSING" -eq 0 ]
}

# restart_under_load : 20 s of recorded, retrying load from this host; the
# processor restarted (SIGTERM, drains) at 5 s and SIGKILLed at 12 s
restart_under_load() {
	"$DIPLOM_LOADGEN" --url "$GW/api/v1/ingest" --rate 200 --duration 20 \
		-c 8 --retry 50 --record "$T_TMP/sent.db" --label nats --json \
		>"$T_TMP/load.json" 2>"$T_TMP/load.err" &
	local load=$!
	track "$load"
	sleep 5
	dk_compose restart -t 40 processor >/dev/null 2>&1
	tap_note "processor restarted at $((SECONDS - load_at)) s"
	sleep 5
	dk_compose kill -s SIGKILL processor >/dev/null 2>&1
	tap_note "processor SIGKILLed at $((SECONDS - load_at)) s, exit status" \
		"$("$DOCKER" inspect -f '{{.State.ExitCode}}' \
		"$(dk_compose ps -q processor)")"
	dk_compose start processor >/dev/null 2>&1
	wait "$load"
	local rc=$?
	untrack "$load"
	return "$rc"
}

# compose_to NAME ARGS... : dk_compose with its output in $T_TMP/NAME.out,
# shown when it fails
compose_to() {
	local name=$1
	shift
	dk_compose "$@" >"$T_TMP/$name.out" 2>&1 && return 0
	sed 's/^/#   /' "$T_TMP/$name.out"
	return 1
}

# stack_gone : no container, volume or network of the project is left
stack_gone() {
	local label=label=com.docker.compose.project=$DK_PROJECT
	[ -z "$(dk_containers)" ] &&
		[ -z "$("$DOCKER" volume ls -q --filter "$label")" ] &&
		[ -z "$("$DOCKER" network ls -q --filter "$label")" ]
}

# nats_refuses_strangers : from a container on the compose network, a
# client without the broker's password is refused (NATS_ANSWER: how)
nats_refuses_strangers() {
	# shellcheck disable=SC2016 # expanded by the container's bash
	NATS_ANSWER=$(dk_compose exec -T ingest bash -c '
		exec 3<>/dev/tcp/nats/4222 || exit 1
		read -r -t 5 line <&3
		printf "CONNECT {\"verbose\":false}\r\nPING\r\n" >&3
		read -r -t 5 line <&3
		echo "$line" | tr -d "\r"' 2>&1)
	case $NATS_ANSWER in *"Authorization Violation"*) ;; *) return 1 ;; esac
}

# password_not_in_env : the roles read the broker's password from the
# secret's file; it is in no role's environment
password_not_in_env() {
	local r
	for r in gateway ingest processor; do
		dk_compose exec -T "$r" env | grep -q '^NATS_PASSWORD=' &&
			return 1
		dk_compose exec -T "$r" env |
			grep -q '^NATS_PASSWORD_FILE=/run/secrets/nats-password$' ||
			return 1
	done
	return 0
}

# no_payload_warning : ingest has not warned that max_payload is short
no_payload_warning() {
	! dk_compose logs --no-color ingest 2>&1 | grep -q max_payload
}

# prom_query EXPR : the result of an instant query of Prometheus, as JSON
prom_query() {
	curl -s --max-time 5 -G --data-urlencode "query=$1" \
		"$PROM/api/v1/query" | jq -c '.data.result'
}

# roles_up : Prometheus' last scrape of each of the three roles found it up
# (PROM_UP: what it found)
roles_up() {
	PROM_UP=$(prom_query 'up{job=~"diplom-.*"}' | jq -r \
		'[.[] | "\(.metric.job)=\(.value[1])"] | sort | join(" ")')
	[ "$PROM_UP" = "diplom-gateway=1 diplom-ingest=1 diplom-processor=1" ]
}

# rules_loaded : /api/v1/rules lists the groups and the alerts of
# monitoring/diplom-rules.yml, no fewer, no more, each evaluated without
# an error (RULES_GOT: what it lists)
rules_loaded() {
	local rules=$top_srcdir/monitoring/diplom-rules.yml want
	want="$(sed -n 's/^  - name: *//p' "$rules" | sort | tr '\n' ' ')/"
	want="$want$(sed -n 's/^ *- alert: *//p' "$rules" | sort | tr '\n' ' ')"
	RULES_GOT=$(curl -s --max-time 5 "$PROM/api/v1/rules" | jq -r \
		'([.data.groups[].name] | sort | map(. + " ") | add) + "/" +
		([.data.groups[].rules[].name] | sort | map(. + " ") | add) +
		([.data.groups[].rules[] | select(.health != "ok") |
		" \(.name): \(.health)"] | add // "")')
	[ "$RULES_GOT" = "$want" ]
}

# ingest_counted N : Prometheus has diplom_ingest_accepted_total, N or
# more (PROM_ACCEPTED: its value)
ingest_counted() {
	PROM_ACCEPTED=$(prom_query 'sum(diplom_ingest_accepted_total)' |
		jq -r '.[0].value[1] // empty')
	[ -n "$PROM_ACCEPTED" ] && [ "${PROM_ACCEPTED%.*}" -ge "$1" ]
}

# prometheus_checks MODE : the Prometheus of docker/monitoring-compose.yml
# scrapes the three roles, has the rules and has counted the 20 messages
prometheus_checks() {
	local mode=$1
	PROM_UP=''
	dk_wait 30 roles_up
	tap_note "Prometheus: up ${PROM_UP:-(no answer)}"
	tap_ok "$mode: Prometheus scrapes gateway, ingest and processor, each up == 1" \
		test "$PROM_UP" = \
		"diplom-gateway=1 diplom-ingest=1 diplom-processor=1"
	RULES_GOT=''
	tap_ok "$mode: Prometheus has the rules of monitoring/diplom-rules.yml" \
		dk_wait 20 rules_loaded
	tap_note "Prometheus: rules ${RULES_GOT:-(no answer)}"
	tap_ok "$mode: Prometheus' alerts page answers (/classic/alerts)" \
		test "$(http_code "$PROM/classic/alerts")" = 200
	PROM_ACCEPTED=''
	tap_ok "$mode: Prometheus has diplom_ingest_accepted_total >= 20" \
		dk_wait 30 ingest_counted 20
	tap_note "Prometheus: diplom_ingest_accepted_total ${PROM_ACCEPTED:-none}"
	phase "$mode: prometheus"
}

# mode_checks MODE : up, health, messages and, for nats, the restart
mode_checks() {
	local mode=$1 db since
	must "$mode: docker-compose up -d" compose_to "up-$mode" up -d ||
		return
	must "$mode: every service is healthy within 90 s" \
		dk_wait_healthy 90 || return
	must "$mode: the gateway answers on $GW" wait_health "$GW" 10 ||
		return
	if [ -n "$DK_OVERLAYS" ]; then
		must "$mode: Prometheus answers on $PROM" \
			wait_http "$PROM/-/ready" 10 || return
		tap_ok "$mode: only the gateway and Prometheus are published, on 127.0.0.1" \
			only_gateway_published
	else
		tap_ok "$mode: only the gateway is published, on 127.0.0.1" \
			only_gateway_published
	fi
	phase "$mode: up and healthy"

	: >"$T_TMP/sent-$mode"
	send_n 20 "docker-$mode" "$T_TMP/sent-$mode"
	tap_ok "$mode: 20 messages accepted by the gateway" \
		test "$(accepted_in "$T_TMP/sent-$mode")" -eq 20
	tap_ok "$mode: each reads back by id as processed" \
		read_back "$T_TMP/sent-$mode" "$mode"
	[ "$mode" = nats ] || return 0

	tap_ok "nats: the broker runs with diplom's max_payload" \
		max_payload_set
	tap_ok "nats: ingest does not warn about max_payload" \
		no_payload_warning
	NATS_ANSWER=''
	tap_ok "nats: the broker refuses a client without its password" \
		nats_refuses_strangers
	tap_note "nats without credentials: ${NATS_ANSWER:-no answer}"
	tap_ok "nats: the roles have the password as a file, not in their environment" \
		password_not_in_env
	tap_ok "nats: a 1 MB message goes through (published as 1.3 MB)" \
		big_message
	load_at=$SECONDS
	tap_ok "nats: diplom-loadgen ran through a processor restart" \
		restart_under_load
	tap_note "load: $(jq -c '{sent, accepted, retries, errors}' \
		"$T_TMP/load.json" 2>/dev/null)"
	sqlite3 -batch -noheader "$T_TMP/sent.db" \
		'SELECT message_id FROM sent' | sort >"$T_TMP/sent.txt"
	must "nats: the load got messages accepted" test -s "$T_TMP/sent.txt" ||
		return
	db=$(results_db)
	MISSING=unknown
	since=$SECONDS
	dk_wait 90 rows_missing "$db"
	tap_note "$(wc -l <"$T_TMP/sent.txt") accepted; $MISSING without a" \
		"row $((SECONDS - since)) s after the load; $(sqlite3 -batch \
		-noheader -readonly "$db" \
		'SELECT count(*) FROM results WHERE deliveries > 1' \
		2>/dev/null) delivered more than once"
	tap_ok "nats: every accepted id has its row in the results volume" \
		test "$MISSING" = 0
	phase "nats: restart under load"
	[ -z "$DK_OVERLAYS" ] || prometheus_checks "$mode"
}

# run_mode MODE [OVERLAY] : the whole cycle with QUEUE_TYPE=MODE, and the
# compose file OVERLAY of docker/ too; down -v whatever happened
run_mode() {
	export QUEUE_TYPE=$1
	DK_OVERLAYS=${2:-}
	mode_checks "$1"
	tap_ok "$1: docker-compose down -v" compose_to "down-$1" down -v -t 40
	tap_ok "$1: no container, volume or network of the stack is left" \
		stack_gone
	phase "$1: messages and down"
}

run_mode memory
run_mode nats "$MONITORING"
