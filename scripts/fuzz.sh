#!/bin/bash
# Build the libFuzzer targets in fuzz/ with clang, whatever compiler the
# main build uses, and run each for FUZZ_SECONDS (default 60). Every target
# starts from its seed corpus (fuzz/corpus/<what>) and its regressions
# (fuzz/regressions/<what>); what it learns stays in the build directory.
# Ends with one line per target; exits non-zero if any target found a crash,
# a leak or undefined behaviour, and says where the input is.
#
# Environment: FUZZ_SECONDS, FUZZ_TARGETS (default: all), CLANG (clang),
# FUZZ_OUT (build directory, default $top_builddir/fuzz-out),
# FUZZ_FLAGS (more libFuzzer options), top_srcdir, top_builddir.
set -u

: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=$PWD}"
: "${FUZZ_SECONDS:=60}"
: "${FUZZ_TARGETS:=message ingest result config http nats}"
: "${CLANG:=clang}"
: "${FUZZ_OUT:=$top_builddir/fuzz-out}"
: "${FUZZ_FLAGS:=}"
: "${PACKAGE_VERSION:=$(sed -n 's/^AC_INIT(\[[^]]*\], \[\([^]]*\)\].*/\1/p' \
	"$top_srcdir/configure.ac")}"

PKGS="libmicrohttpd json-c sqlite3 libcurl uuid libnats gnutls"
# shellcheck disable=SC2086
read -ra PKG_CFLAGS <<<"$(pkg-config --cflags $PKGS)"
# shellcheck disable=SC2086
read -ra LIBS <<<"$(pkg-config --libs $PKGS) -pthread"
CFLAGS=(-std=c11 -g -O1 -fno-omit-frame-pointer -pthread -D_GNU_SOURCE
	"-DPACKAGE_VERSION=\"$PACKAGE_VERSION\"" "-I$top_srcdir/src"
	"-I$top_srcdir/fuzz" "${PKG_CFLAGS[@]}"
	"-fsanitize=address,undefined" -fno-sanitize-recover=undefined)

die() {
	echo "fuzz: $*" >&2
	exit 2
}

command -v "$CLANG" >/dev/null || die "$CLANG not found"
mkdir -p "$FUZZ_OUT/obj" || die "cannot create $FUZZ_OUT"

# The library, instrumented: every src/*.c but the two mains.
build_lib() {
	local src obj objs="" lib=$FUZZ_OUT/libdiplom-fuzz.a changed=no
	for src in "$top_srcdir"/src/*.c; do
		case ${src##*/} in
		main.c | loadgen.c) continue ;;
		esac
		obj=$FUZZ_OUT/obj/$(basename "$src" .c).o
		objs="$objs $obj"
		[ "$obj" -nt "$src" ] && [ -z "$(find "$top_srcdir/src" \
			-name '*.h' -newer "$obj")" ] && continue
		echo "  CC (fuzz) src/${src##*/}"
		"$CLANG" "${CFLAGS[@]}" -fsanitize=fuzzer-no-link -c "$src" \
			-o "$obj" || return 1
		changed=yes
	done
	[ "$changed" = no ] && [ -f "$lib" ] && return 0
	rm -f "$lib"
	# shellcheck disable=SC2086
	ar rcs "$lib" $objs
}

build_target() {
	local what=$1 bin=$FUZZ_OUT/fuzz_$1
	[ "$bin" -nt "$top_srcdir/fuzz/fuzz_$what.c" ] &&
		[ "$bin" -nt "$FUZZ_OUT/libdiplom-fuzz.a" ] &&
		[ "$bin" -nt "$top_srcdir/fuzz/fuzz.h" ] && return 0
	echo "  CCLD (fuzz) fuzz/fuzz_$what"
	"$CLANG" "${CFLAGS[@]}" -fsanitize=fuzzer \
		"$top_srcdir/fuzz/fuzz_$what.c" "$FUZZ_OUT/libdiplom-fuzz.a" \
		"${LIBS[@]}" -o "$FUZZ_OUT/fuzz_$what"
}

# run_target WHAT: fuzz for FUZZ_SECONDS; prints the summary line
run_target() {
	local what=$1 log=$FUZZ_OUT/$1.log work=$FUZZ_OUT/corpus/$1
	local art=$FUZZ_OUT/artifacts/$1/ rc last runs extra="" d dirs=""
	mkdir -p "$work" "$art"
	for d in corpus regressions; do
		[ -d "$top_srcdir/fuzz/$d/$what" ] &&
			dirs="$dirs $top_srcdir/fuzz/$d/$what"
	done
	# config prints --help and --version to stdout: keep it quiet
	[ "$what" = config ] && extra="-close_fd_mask=1"
	# shellcheck disable=SC2086
	(cd "$FUZZ_OUT" && "./fuzz_$what" -max_total_time="$FUZZ_SECONDS" \
		-timeout=60 -print_final_stats=1 -artifact_prefix="$art" \
		$extra $FUZZ_FLAGS "$work" $dirs) >"$log" 2>&1
	rc=$?
	last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	if [ "$rc" -eq 0 ]; then
		echo "fuzz_$what: ok, ${FUZZ_SECONDS}s, ${runs:-?} runs, ${last:-no stats}"
		return 0
	fi
	echo "fuzz_$what: FAILED (exit $rc), ${runs:-?} runs, ${last:-no stats}"
	grep -E -m 3 'ERROR: |SUMMARY: |check failed|runtime error' "$log" |
		sed 's/^/  /'
	find "$art" -type f | sed 's/^/  input: /'
	echo "  log: $log"
	echo "  keep the input in fuzz/regressions/$what/"
	return 1
}

echo "fuzz: building with $CLANG in $FUZZ_OUT"
build_lib || die "building the library failed"
for t in $FUZZ_TARGETS; do
	[ -f "$top_srcdir/fuzz/fuzz_$t.c" ] || die "no target fuzz/fuzz_$t.c"
	build_target "$t" || die "building fuzz_$t failed"
done
status=0
for t in $FUZZ_TARGETS; do
	run_target "$t" || status=1
done
exit $status
