#!/bin/sh
# man-options.sh - every long option of "diplomd --help" is documented in
# diplomd(8), and the manual documents no option the daemon does not have;
# the same for diplomctl and diplomctl(8). Both lists are derived, so adding
# an option to src/config.c or src/ctl/args.c without a manual entry (or the
# reverse) fails here.
set -eu

. "$(dirname "$0")/lib.sh"

DIPLOMCTL=${DIPLOMCTL:-$top_builddir/src/ctl/diplomctl}

# options PROGRAM MAN_PAGE NAME : the option lists of --help and of the
# manual's OPTIONS section into $T_TMP/NAME.help and $T_TMP/NAME.man
options() {
	[ -x "$1" ] || bail "$1 not built"
	[ -r "$2" ] || bail "$2 missing"
	# --help: option lines start with "--name=" or "-x, --name"
	"$1" --help >"$T_TMP/$3.help.txt" || bail "$1 --help failed"
	sed -n 's/^ *\(-[A-Za-z], \)\{0,1\}--\([a-z0-9][a-z0-9-]*\).*/\2/p' \
		"$T_TMP/$3.help.txt" | sort -u >"$T_TMP/$3.help"
	# manual: the tag lines (the line after .TP or .TQ) of the OPTIONS
	# section; roff writes a hyphen as \-
	awk '/^\.SH /{ in_opts = ($2 == "OPTIONS") } in_opts && tag { print }
		{ tag = in_opts && /^\.T[PQ]/ }' "$2" |
		sed 's/\\-/-/g' | grep -o -- '--[a-z0-9][a-z0-9-]*' |
		sed 's/^--//' | sort -u >"$T_TMP/$3.man"
	[ -s "$T_TMP/$3.help" ] || bail "no options found in $1 --help"
	[ -s "$T_TMP/$3.man" ] || bail "no options found in $2"
}

options "$DIPLOMD" "$top_srcdir/man/diplomd.8" diplomd
options "$DIPLOMCTL" "$top_srcdir/man/diplomctl.8" diplomctl

tap_plan $(cat "$T_TMP"/*.help "$T_TMP"/*.man | wc -l)

in_list() { grep -qx -- "$1" "$2"; }

for prog in diplomd diplomctl; do
	while read -r opt; do
		tap_ok "--$opt from $prog --help is documented in $prog(8)" \
			in_list "$opt" "$T_TMP/$prog.man"
	done <"$T_TMP/$prog.help"
	while read -r opt; do
		tap_ok "--$opt from $prog(8) is in $prog --help" \
			in_list "$opt" "$T_TMP/$prog.help"
	done <"$T_TMP/$prog.man"
done

tap_done
