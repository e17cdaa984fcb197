#!/bin/bash
# docker-stack.sh - the compose stack (docker/docker-compose.yml, project
# diplom) up or down: make docker-up, make docker-down.
#
#   scripts/docker-stack.sh up       QUEUE_TYPE=nats for the broker's queue
#   scripts/docker-stack.sh down [-v]
#
# up does what scripts/docker-test.sh does before its checks: Debian's
# docker.io and docker-compose installed when missing, a dockerd started
# when none runs (left running for the stack; its pid and log in
# $DIPLOM_RUN_DIR/docker, default ./run/docker), debian:bookworm-slim made
# with debootstrap when missing, NATS_IMAGE (nats:2.10-alpine or the
# stand-in), then docker-compose up -d --build and a wait until every
# service is healthy.  The gateway is then on http://127.0.0.1:8080
# (DIPLOM_GATEWAY_PORT for another host port).
# down is docker-compose down (-v removes the volumes too: the results and
# the broker's store) and stops the dockerd that up started.
# The broker's password is made once, in $DIPLOM_RUN_DIR/secrets/nats-password
# (default ./run/secrets), unless DIPLOM_NATS_PASSWORD_FILE names one.
set -u
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../tests/lib.sh"
# shellcheck source=scripts/docker-lib.sh
. "$(dirname "$0")/docker-lib.sh"

RUN_DIR=${DIPLOM_RUN_DIR:-$top_srcdir/run}/docker
# the broker's password (docker/docker-compose.yml's secret nats-password)
SECRET_DIR=${DIPLOM_RUN_DIR:-$top_srcdir/run}/secrets

case ${1:-} in
up)
	[ "$(id -u)" = 0 ] || bail "needs root (dockerd, apt-get, debootstrap)"
	export DIPLOM_GATEWAY_PORT=${DIPLOM_GATEWAY_PORT:-8080}
	export QUEUE_TYPE=${QUEUE_TYPE:-memory}
	if dk_port_busy "$DIPLOM_GATEWAY_PORT"; then
		say "port $DIPLOM_GATEWAY_PORT is in use on this host; choose" \
			"another with DIPLOM_GATEWAY_PORT=N"
		exit 1
	fi
	dk_install || bail "cannot install Docker"
	dk_daemon_up "$RUN_DIR" detach || bail "no dockerd"
	dk_base_image "$T_TMP" || bail "no base image $DK_BASE_IMAGE"
	dk_rootfs_remove "$T_TMP/rootfs"
	dk_nats_image || bail "no nats image"
	dk_nats_secret "$SECRET_DIR" || bail "cannot make $SECRET_DIR/nats-password"
	dk_compose up -d --build || exit 1
	dk_wait_healthy 120 || exit 1
	say "QUEUE_TYPE=$QUEUE_TYPE, NATS_IMAGE=$NATS_IMAGE; the gateway is on" \
		"http://127.0.0.1:$DIPLOM_GATEWAY_PORT (make docker-down stops it)"
	;;
down)
	shift
	if dk_answers; then
		dk_nats_secret "$SECRET_DIR" || exit 1
		dk_compose down "$@" || exit 1
	fi
	dk_daemon_down "$RUN_DIR"
	;;
*)
	script_help 19
	exit 2
	;;
esac
