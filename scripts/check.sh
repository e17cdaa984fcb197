#!/bin/bash
# Install what is missing, build with warnings as errors, run make check.
set -e
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../tests/lib.sh"
cd "$top_srcdir"
scripts/install-deps.sh
CONFIGURE_FLAGS="--enable-werror ${CONFIGURE_FLAGS:-}"
export CONFIGURE_FLAGS
[ -x configure ] || autoreconf -fi
# shellcheck disable=SC2086 # flags, split on purpose
[ -f Makefile ] || ./configure $CONFIGURE_FLAGS
make -j"$(nproc)"
make -j"$(nproc)" check
