# shellcheck shell=bash
# scripts/docker-lib.sh - Docker for scripts/docker-test.sh and
# scripts/docker-stack.sh (make docker-up, make docker-down); sourced after
# tests/lib.sh.
#
#   dk_install            Debian's docker.io, docker-compose, debootstrap
#                         and iptables, installed with apt-get when missing
#   dk_daemon_up DIR [detach]
#                         a dockerd that answers: the one running, or one
#                         started here (pid, log and the host's network
#                         state before it in DIR)
#   dk_daemon_down DIR    stop the dockerd DIR records, by pid, and undo
#                         what it left: mounts, docker0, its iptables chains,
#                         the FORWARD policy and ip_forward
#   dk_base_image         debian:bookworm-slim, made with debootstrap and
#                         docker import when there is none
#   dk_nats_image         NATS_IMAGE: nats:2.10-alpine when it is here or can
#                         be pulled, else the stand-in docker/nats.Dockerfile
#   dk_compose ARGS...    docker-compose on docker/docker-compose.yml and the
#                         overlays of DK_OVERLAYS (files of docker/, e.g.
#                         monitoring-compose.yml), project $DK_PROJECT
#   dk_wait_healthy SECS  every service of the project runs, healthy
#   dk_nats_secret DIR    DIPLOM_NATS_PASSWORD_FILE (default
#                         DIR/nats-password), a random password made when
#                         there is none
#
# Debian's client is used, with BuildKit (docker/Dockerfile.dockerignore
# needs it): /usr/local/bin may hold another docker, and docker-compose runs
# the `docker` it finds first on PATH.

export PATH=/usr/bin:/usr/sbin:/bin:/sbin:$PATH
export DOCKER_BUILDKIT=1 COMPOSE_DOCKER_CLI_BUILD=1
DOCKER=/usr/bin/docker
DOCKERD=/usr/sbin/dockerd
COMPOSE=/usr/bin/docker-compose
# shellcheck disable=SC2154 # top_srcdir comes from tests/lib.sh
COMPOSE_YML=$top_srcdir/docker/docker-compose.yml
DK_BASE_IMAGE=debian:bookworm-slim
DK_NATS_OFFICIAL=nats:2.10-alpine
DK_NATS_STANDIN=diplom-nats:bookworm
DK_PROJECT=${DK_PROJECT:-diplom}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

# dk_install : what the scripts need, from Debian's archive when missing
dk_install() {
	local missing=''
	{ [ -x "$DOCKER" ] && [ -x "$DOCKERD" ]; } || missing="$missing docker.io"
	[ -x "$COMPOSE" ] || missing="$missing docker-compose"
	[ -x /usr/sbin/debootstrap ] || missing="$missing debootstrap"
	# the clean-up reads and restores dockerd's chains with it
	command -v iptables-save >/dev/null 2>&1 || missing="$missing iptables"
	[ -n "$missing" ] || return 0
	say "installing$missing"
	# shellcheck disable=SC2086 # a list of package names
	apt-get install -y -q --no-install-recommends $missing >/dev/null ||
		{ apt-get update -q >/dev/null &&
			apt-get install -y -q --no-install-recommends $missing \
				>/dev/null; }
}

# dk_wait SECONDS CMD... : poll CMD, once a second, until it succeeds
# (wait_until counts tries, and a docker command takes a while itself)
dk_wait() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 1
	done
}

# dk_answers : a dockerd answers on the default socket
dk_answers() { "$DOCKER" info >/dev/null 2>&1; }

# dk_daemon_up DIR [detach] : a dockerd that answers within 60 s.  One that
# runs already is used and left alone.  Else one is started, in a session of
# its own (a Ctrl-C meant for the script must not stop it before the
# clean-up has used it), with its pid in DIR/dockerd.pid, its log in
# DIR/dockerd.log and what it is about to change in DIR/dockerd.state.
# With detach it is not this shell's child (make docker-up leaves it up).
dk_daemon_up() {
	local dir=$1 detach=${2:-} pid
	dk_answers && return 0
	if [ -s /var/run/docker.pid ] &&
	    pid_running "$(cat /var/run/docker.pid)"; then
		# someone else's, starting or stuck: wait for it, never replace it
		dk_wait 60 dk_answers
		return
	fi
	mkdir -p "$dir"
	dk_net_record >"$dir/dockerd.state"
	if [ -n "$detach" ]; then
		setsid "$DOCKERD" >>"$dir/dockerd.log" 2>&1 </dev/null &
		disown $!
	else
		setsid "$DOCKERD" >>"$dir/dockerd.log" 2>&1 </dev/null &
	fi
	pid=$!
	echo "$pid" >"$dir/dockerd.pid"
	local end=$((SECONDS + 60))
	until dk_answers; do
		if ! pid_running "$pid"; then
			say "dockerd exited (log: $dir/dockerd.log)"
			return 1
		fi
		if [ "$SECONDS" -ge "$end" ]; then
			say "dockerd did not answer within 60 s" \
				"(log: $dir/dockerd.log)"
			return 1
		fi
		sleep 1
	done
	# the containerd it runs as its child, to be sure it ends with it
	pgrep -P "$pid" -x containerd >"$dir/containerd.pid" || :
}

# dk_net_record : shell assignments for what a dockerd changes on the host
dk_net_record() {
	local had_bridge=0 had_chains=0
	ip link show docker0 >/dev/null 2>&1 && had_bridge=1
	iptables-save 2>/dev/null | grep -q '^:DOCKER' && had_chains=1
	echo "had_bridge=$had_bridge"
	echo "had_chains=$had_chains"
	echo "ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)"
	echo "forward_policy=$(iptables-save -t filter 2>/dev/null |
		sed -n 's/^:FORWARD \([A-Z]*\) .*/\1/p')"
}

# dk_daemon_down DIR : stop the dockerd started by dk_daemon_up DIR, if any,
# and put the host back as dk_net_record found it
dk_daemon_down() {
	local dir=$1 pid cpid m t rule chain
	local had_bridge=1 had_chains=1 ip_forward='' forward_policy=''
	pid=$(cat "$dir/dockerd.pid" 2>/dev/null) || return 0
	[ -n "$pid" ] || return 0
	cpid=$(cat "$dir/containerd.pid" 2>/dev/null)
	kill -TERM "$pid" 2>/dev/null
	if ! pid_wait "$pid" 60; then
		say "dockerd (pid $pid) did not stop within 60 s; SIGKILL"
		kill -KILL "$pid" 2>/dev/null
		pid_wait "$pid" 5
	fi
	for m in $cpid; do
		pid_running "$m" || continue
		kill -TERM "$m" 2>/dev/null
		pid_wait "$m" 10 || kill -KILL "$m" 2>/dev/null
	done
	rm -f "$dir/dockerd.pid" "$dir/containerd.pid"
	# mounts of its containers and network namespaces, innermost first
	awk '$2 ~ "^(/var/lib/docker|/run/docker)(/|$)" { print $2 }' \
		/proc/mounts | sort -r | while read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m"
	done
	# shellcheck disable=SC1091
	. "$dir/dockerd.state" 2>/dev/null || return 0
	if [ "$had_bridge" = 0 ] && ip link show docker0 >/dev/null 2>&1; then
		ip link delete docker0
	fi
	if [ "$had_chains" = 0 ]; then
		for t in nat filter; do
			iptables-save -t "$t" | grep -E '^-A .*(DOCKER|docker0)' |
				sed 's/^-A /-D /' | while read -r rule; do
				# shellcheck disable=SC2086 # a rule, word by word
				iptables -t "$t" $rule
			done
			for chain in $(iptables-save -t "$t" |
			    sed -n 's/^:\(DOCKER[^ ]*\) .*/\1/p'); do
				iptables -t "$t" -F "$chain"
			done
			for chain in $(iptables-save -t "$t" |
			    sed -n 's/^:\(DOCKER[^ ]*\) .*/\1/p'); do
				iptables -t "$t" -X "$chain"
			done
		done
	fi
	[ -n "$forward_policy" ] && iptables -P FORWARD "$forward_policy"
	[ -n "$ip_forward" ] &&
		echo "$ip_forward" >/proc/sys/net/ipv4/ip_forward
	rm -f "$dir/dockerd.state"
	return 0
}

# dk_image_here IMAGE : the engine holds IMAGE
dk_image_here() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

# dk_base_image DIR : debian:bookworm-slim, which no registry can supply
# here: a minbase debootstrap of bookworm under DIR, imported with the
# official image's PATH and command.  An existing one is reused.
dk_base_image() {
	local dir=$1 rootfs=$1/rootfs
	dk_image_here "$DK_BASE_IMAGE" && return 0
	say "making $DK_BASE_IMAGE with debootstrap from $DEBIAN_MIRROR"
	mkdir -p "$dir"
	if ! debootstrap --variant=minbase bookworm "$rootfs" \
	    "$DEBIAN_MIRROR" >"$dir/debootstrap.log" 2>&1; then
		tail -n 20 "$dir/debootstrap.log" >&2
		dk_rootfs_remove "$rootfs"
		return 1
	fi
	# what the official slim image leaves out too
	rm -rf "$rootfs"/var/cache/apt/archives/*.deb \
		"$rootfs"/var/lib/apt/lists/*
	tar -C "$rootfs" -c . | "$DOCKER" import \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'CMD ["bash"]' - "$DK_BASE_IMAGE" >/dev/null
	local rc=$?
	dk_rootfs_remove "$rootfs"
	return "$rc"
}

# dk_rootfs_remove DIR : unmount what debootstrap may have left mounted in
# DIR (proc, sys, devices) and remove it without crossing into a mount
dk_rootfs_remove() {
	local m
	[ -d "$1" ] || return 0
	awk -v r="$1" 'index($2, r "/") == 1 { print $2 }' /proc/mounts |
		sort -r | while read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m"
	done
	rm -rf --one-file-system "$1"
}

# dk_nats_image : export NATS_IMAGE for the compose file.  A NATS_IMAGE set
# by the caller wins; then nats:2.10-alpine, here or pulled; else the
# stand-in, built (again: the cache makes that quick) from the base image.
dk_nats_image() {
	if [ -n "${NATS_IMAGE:-}" ]; then
		export NATS_IMAGE
		return 0
	fi
	if dk_image_here "$DK_NATS_OFFICIAL" ||
	    timeout 60 "$DOCKER" pull -q "$DK_NATS_OFFICIAL" >/dev/null 2>&1; then
		export NATS_IMAGE=$DK_NATS_OFFICIAL
		return 0
	fi
	say "$DK_NATS_OFFICIAL cannot be pulled; building the stand-in" \
		"$DK_NATS_STANDIN (docker/nats.Dockerfile)"
	"$DOCKER" build -q -f "$top_srcdir/docker/nats.Dockerfile" \
		-t "$DK_NATS_STANDIN" "$top_srcdir" >/dev/null || return 1
	export NATS_IMAGE=$DK_NATS_STANDIN
}

# dk_nats_secret DIR : export DIPLOM_NATS_PASSWORD_FILE, the compose
# secret the broker and the roles share (DIR/nats-password unless the
# caller set one): made (letters
# and digits, as nats-server reads it from its environment) when missing.
# Readable by the containers' users, who are not root: DIR must be private.
dk_nats_secret() {
	local f=${DIPLOM_NATS_PASSWORD_FILE:-$1/nats-password}
	export DIPLOM_NATS_PASSWORD_FILE=$f
	[ -s "$f" ] && return 0
	mkdir -p "$1" && chmod 700 "$1" || return 1
	(umask 022 && printf 'p%s\n' "$(tr -dc A-Za-z0-9 </dev/urandom |
		head -c 32)" >"$f")
}

# dk_compose ARGS... : docker-compose on the project's compose file and
# the overlays DK_OVERLAYS names
DK_OVERLAYS=${DK_OVERLAYS:-}
dk_compose() {
	local files=(-f "$COMPOSE_YML") f
	for f in $DK_OVERLAYS; do
		files+=(-f "$top_srcdir/docker/$f")
	done
	"$COMPOSE" -p "$DK_PROJECT" "${files[@]}" "$@"
}

# dk_containers : ids of the project's containers, running or not
dk_containers() {
	"$DOCKER" ps -aq --filter "label=com.docker.compose.project=$DK_PROJECT"
}

# dk_unhealthy : the services of the project not (yet) healthy, one a line
dk_unhealthy() {
	local id
	for id in $(dk_containers); do
		"$DOCKER" inspect -f \
			'{{.Name}} {{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' \
			"$id" 2>/dev/null
	done | grep -v ' healthy$'
}

# dk_all_healthy N : N containers, every one healthy
dk_all_healthy() {
	[ "$(dk_containers | wc -l)" -eq "$1" ] &&
		[ -z "$(dk_unhealthy)" ]
}

# dk_wait_healthy SECONDS : wait for dk_all_healthy, one container for each
# service of the compose files; names the laggards
dk_wait_healthy() {
	local n
	n=$(dk_compose config --services | wc -l)
	dk_wait "$1" dk_all_healthy "$n" && return 0
	say "not healthy after $1 s: $(dk_unhealthy | tr '\n' ' ')"
	return 1
}

# dk_port_busy PORT : something listens on PORT on this host
dk_port_busy() {
	grep -q "$(printf ':%04X ' "$1").* 0A " /proc/net/tcp /proc/net/tcp6 \
		2>/dev/null
}
