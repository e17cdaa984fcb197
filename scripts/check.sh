#!/bin/sh
# Install what is missing, build with warnings as errors, run make check.
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh
CONFIGURE_FLAGS="--enable-werror ${CONFIGURE_FLAGS:-}"
export CONFIGURE_FLAGS
[ -x configure ] || autoreconf -fi
[ -f Makefile ] || ./configure $CONFIGURE_FLAGS
make -j"$(nproc)"
make -j"$(nproc)" check
