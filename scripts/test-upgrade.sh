#!/bin/bash
# test-upgrade.sh - upgrade the installed package under load and lose
# nothing: in a booted Debian 12 sandbox (../shared/tools/systemd-sandbox)
# install diplom 0.1.0, run it on NATS, send with diplom-loadgen --retry
# --record from this host, install this tree's package over it meanwhile,
# and check that every accepted message has its one row, that the roles
# run the new version, that the operator's edits of /etc/default/diplom
# are kept, that the result store was migrated, and that the broker, open
# in 0.1.0, wants the password the upgrade made while the messages waiting
# in its stream still come out.
#
#   scripts/test-upgrade.sh [NEW_DEB]
#
# NEW_DEB: the package to upgrade to, else one is built from this tree.
# The 0.1.0 package is built from DIPLOM_OLD_REF (default f9f0b5c, the
# commit 0.1.0 was made of) of this tree's git history. Needs root, apt,
# git, and ports 8080-8082 and 4222 free; prints TAP. Environment as
# scripts/test-package.sh's: DIPLOM_SANDBOX, SYSTEMD_SANDBOX, KEEP_SANDBOX.
set -e
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../tests/lib.sh"

sandbox_tool=${SYSTEMD_SANDBOX:-$top_srcdir/../shared/tools/systemd-sandbox}
sbx=${DIPLOM_SANDBOX:-/var/tmp/diplom-sbx}
old_ref=${DIPLOM_OLD_REF:-f9f0b5c}
GW=http://127.0.0.1:8080
work=$T_TMP/upgrade
mkdir "$work"
started=$(date +%s)
tap_plan

# upgrade_at_exit STATUS : the journal when something failed, the sandbox
# down, the verdict
upgrade_at_exit() {
	if [ "$T_FAILED" -ne 0 ] && [ -x "$sandbox_tool" ]; then
		tap_note "journal of the diplom units (last lines):"
		sb 'journalctl --no-pager -n 40 -u "diplomd@*"' 2>/dev/null |
			sed 's/^/#   /'
	fi
	if [ -z "${KEEP_SANDBOX:-}" ] && [ -x "$sandbox_tool" ]; then
		"$sandbox_tool" down "$sbx" >/dev/null 2>&1
	fi
	tap_note "runtime $(($(date +%s) - started)) s"
}
T_AT_EXIT=upgrade_at_exit

# sb CMD : run CMD (a bash command line) inside the sandbox
sb() { "$sandbox_tool" run "$sbx" "$1"; }

[ "$(id -u)" = 0 ] || bail "needs root (the sandbox does)"
[ -x "$sandbox_tool" ] || bail "$sandbox_tool not found"
[ -x "$DIPLOM_LOADGEN" ] || bail "diplom-loadgen not built"
need_tools sqlite3 git

# --- the two packages ---------------------------------------------------------

git -C "$top_srcdir" rev-parse -q --verify "$old_ref^{commit}" >/dev/null ||
	bail "$old_ref is not in this tree's history"
mkdir -p "$work/old-src"
git -C "$top_srcdir" archive "$old_ref" | tar -C "$work/old-src" -xf -
if deb_build "$work/old-src" "$work/old" >"$work/old-build.log" 2>&1; then
	old_deb=$(ls "$work"/old/diplom_*.deb)
	tap_pass "the 0.1.0 package builds from $old_ref: $(basename "$old_deb")"
else
	tail -n 30 "$work/old-build.log" | sed 's/^/#   /'
	bail "the 0.1.0 package did not build"
fi
if [ $# -ge 1 ]; then
	new_deb=$(readlink -f "$1")
elif deb_build "$top_srcdir" "$work/new" >"$work/new-build.log" 2>&1; then
	new_deb=$(ls "$work"/new/diplom_*.deb)
else
	tail -n 30 "$work/new-build.log" | sed 's/^/#   /'
	bail "this tree's package did not build"
fi
new_version=$(dpkg-deb -f "$new_deb" Version)
tap_note "upgrading to $(basename "$new_deb")"

# --- 0.1.0 on NATS, with an operator's edits ------------------------------

"$sandbox_tool" up "$sbx" >"$work/up.log" 2>&1 ||
	bail "systemd-sandbox up $sbx failed"
sb 'dpkg --purge diplom nats-server >/dev/null 2>&1 || true
    rm -rf /var/lib/diplom /var/lib/diplom-nats /var/lib/private/diplom-nats \
	/root/diplom_*.deb
    mkdir -p /root/old /root/new
    systemctl reset-failed >/dev/null 2>&1 || true'
"$sandbox_tool" copy "$sbx" "$old_deb" "$new_deb"
sb "mv /root/$(basename "$old_deb") /root/old/ &&
    mv /root/$(basename "$new_deb") /root/new/"
sb 'find /var/lib/apt/lists -maxdepth 1 -name "*Packages*" -mtime -1 |
    grep -q . || apt-get update -q >/dev/null' || bail "apt-get update failed"
tap_ok "apt-get install diplom 0.1.0 and nats-server" \
	sb "apt-get install -y -q /root/old/$(basename "$old_deb") nats-server \
	    >/dev/null 2>&1"
# the operator's edits: the backend, a setting, a note of their own
sb 'sed -i "s/^#\?QUEUE_TYPE=.*/QUEUE_TYPE=nats/;
	    s/^#\?PROCESSOR_WORKERS=.*/PROCESSOR_WORKERS=3/" /etc/default/diplom &&
    echo "# changed for the upgrade test by the operator" >>/etc/default/diplom &&
    systemctl restart diplom.target'
roles_healthy() {
	wait_health "$GW" 20 && wait_health http://127.0.0.1:8081 20 &&
		wait_health http://127.0.0.1:8082 20
}
tap_ok "0.1.0 runs on NATS, every role healthy" roles_healthy
tap_ok "the roles run 0.1.0" \
	sb 'journalctl --no-pager -q -u diplomd@processor | grep -q "diplomd 0.1.0 started"'

# A backlog in the stream across the upgrade: with the processor stopped,
# 50 messages wait in the stream of a broker without authentication; the
# new package gives the broker a password and restarts it, and they must
# still come out.
sb 'systemctl stop diplomd@processor'
backlog=$work/backlog.ids
: >"$backlog"
for i in $(seq 50); do
	read -r code id <<<"$(ingest_one "backlog$i")"
	[ "$code" = 200 ] && [ "$id" != - ] && echo "$id" >>"$backlog"
done
tap_ok "50 messages wait in 0.1.0's stream, the processor stopped" \
	test "$(wc -l <"$backlog")" = 50

# --- the upgrade under load ---------------------------------------------------

sent=$work/sent.db
"$DIPLOM_LOADGEN" --url "$GW/api/v1/ingest" --duration 25 -c 4 --rate 200 \
	--retry 200 --record "$sent" --label upgrade --json \
	>"$work/loadgen.json" 2>"$work/loadgen.log" &
lg=$!
track "$lg"
sleep 5
t0=$(date +%s)
# the edited conffile is kept, as an unattended upgrade keeps it
if sb "DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    -o Dpkg::Options::=--force-confold /root/new/$(basename "$new_deb")" \
    >"$work/upgrade.log" 2>&1; then
	tap_pass "apt-get install $new_version over 0.1.0 under load ($(($(date +%s) - t0)) s)"
else
	sed 's/^/#   /' "$work/upgrade.log" | tail -n 20
	tap_fail "apt-get install $new_version over 0.1.0 under load"
fi
lg_rc=0
wait "$lg" || lg_rc=$?
untrack "$lg"
tap_ok "diplom-loadgen completed: $(jq -c '{sent, accepted, retries, errors}' \
	"$work/loadgen.json" 2>/dev/null)" test "$lg_rc" -eq 0
tap_ok "every role is healthy after the upgrade" roles_healthy

# --- what the upgrade kept and changed ----------------------------------------

db=$sbx/var/lib/diplom/results.db
# missing : accepted messages without their row in the sandbox's store
missing() {
	sqlite3 -batch -noheader -cmd '.timeout 5000' "$sent" \
		"ATTACH '$db' AS r; SELECT count(*) FROM sent s WHERE NOT EXISTS
		 (SELECT 1 FROM r.results x WHERE x.message_id = s.message_id)"
}
none_missing() { [ "$(missing)" = 0 ]; }
wait_until 60 none_missing || true
tap_note "accepted $(sent_count "$sent" upgrade), without a row $(missing)"
tap_ok "every accepted message has its row" none_missing
tap_ok "the roles run $new_version" \
	sb "for r in gateway ingest processor; do
	        journalctl --no-pager -q -u diplomd@\$r |
	            grep -q 'diplomd ${new_version%%-*} started' || exit 1
	    done"
tap_ok "/usr/sbin/diplomd is $new_version" \
	sb "/usr/sbin/diplomd --version | grep -q '${new_version%%-*}'"
# backlog_stored : every message of the backlog has its row
backlog_stored() {
	local id n=0
	while read -r id; do
		[ "$(sqlite3 -batch -noheader -cmd '.timeout 5000' "$db" \
		    "SELECT count(*) FROM results WHERE message_id = '$id'")" = 1 ] ||
			n=$((n + 1))
	done <"$backlog"
	[ "$n" = 0 ] || { tap_note "$n of the backlog have no row"; return 1; }
}
wait_until 60 backlog_stored || true
tap_ok "the stream's backlog from before the upgrade is processed after it" \
	backlog_stored
tap_ok "the upgrade made the broker's password, 0640 root:diplom" \
	sb 'cd /etc/diplom &&
	    [ "$(stat -c "%a %U %G" nats-password)" = "640 root diplom" ] &&
	    [ "$(stat -c "%a %U %G" diplom-nats.env)" = "640 root diplom" ] &&
	    [ "$(cat diplom-nats.env)" = "DIPLOM_NATS_PASSWORD=$(cat nats-password)" ]'
# nats_refuses : a raw client without credentials is refused
nats_refuses() {
	local answer
	answer=$(nats_answer '{"verbose":false}')
	tap_note "the upgraded broker answers: $answer"
	[ "$answer" = "-ERR 'Authorization Violation'" ]
}
tap_ok "the upgraded broker refuses a publish without credentials" nats_refuses
tap_ok "the operator's edits of /etc/default/diplom are kept" \
	sb 'grep -qx QUEUE_TYPE=nats /etc/default/diplom &&
	    grep -qx PROCESSOR_WORKERS=3 /etc/default/diplom &&
	    grep -q "changed for the upgrade test by the operator" /etc/default/diplom'
schema=$(sed -n 's/^#define SCHEMA_VERSION \([0-9]*\).*/\1/p' \
	"$top_srcdir/src/result_store.c")
tap_ok "the result store was migrated (schema version $schema)" \
	test "$(sqlite3 -cmd '.timeout 5000' "$db" 'PRAGMA user_version')" = "$schema"
tap_done
