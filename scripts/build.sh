#!/bin/bash
# Configure and build in the source tree when that has not been done yet.
set -e
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../tests/lib.sh"
cd "$top_srcdir"
[ -x configure ] || autoreconf -fi
# shellcheck disable=SC2086 # flags, split on purpose
[ -f Makefile ] || ./configure ${CONFIGURE_FLAGS:-}
make -j"$(nproc)" >/dev/null
