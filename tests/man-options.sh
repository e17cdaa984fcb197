#!/bin/sh
# man-options.sh - every long option of "diplomd --help" is documented in
# diplomd(8), and the manual documents no option the daemon does not have.
# Both lists are derived, so adding an option to src/config.c without a
# manual entry (or the reverse) fails here.
set -eu

. "$(dirname "$0")/lib.sh"

man_page=$top_srcdir/man/diplomd.8
[ -x "$DIPLOMD" ] || bail "$DIPLOMD not built"
[ -r "$man_page" ] || bail "$man_page missing"

# --help: option lines start with "--name=" or "-x, --name"
"$DIPLOMD" --help >"$T_TMP/help" || bail "diplomd --help failed"
sed -n 's/^ *\(-[A-Za-z], \)\{0,1\}--\([a-z0-9][a-z0-9-]*\).*/\2/p' \
	"$T_TMP/help" | sort -u >"$T_TMP/help.opts"

# manual: the tag lines (the line after .TP) of the OPTIONS section; roff
# writes a hyphen as \-
awk '/^\.SH /{ in_opts = ($2 == "OPTIONS") } in_opts && tag { print }
	{ tag = in_opts && /^\.TP/ }' "$man_page" |
	sed 's/\\-/-/g' | grep -o -- '--[a-z0-9][a-z0-9-]*' |
	sed 's/^--//' | sort -u >"$T_TMP/man.opts"

[ -s "$T_TMP/help.opts" ] || bail "no options found in diplomd --help"
[ -s "$T_TMP/man.opts" ] || bail "no options found in $man_page"

n_help=$(wc -l <"$T_TMP/help.opts")
n_man=$(wc -l <"$T_TMP/man.opts")
tap_plan $((n_help + n_man))

in_list() { grep -qx -- "$1" "$2"; }

while read -r opt; do
	tap_ok "--$opt from --help is documented in diplomd(8)" \
		in_list "$opt" "$T_TMP/man.opts"
done <"$T_TMP/help.opts"
while read -r opt; do
	tap_ok "--$opt from diplomd(8) is in --help" \
		in_list "$opt" "$T_TMP/help.opts"
done <"$T_TMP/man.opts"

tap_done
