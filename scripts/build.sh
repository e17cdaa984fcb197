#!/bin/sh
# Configure and build in the source tree when that has not been done yet.
set -eu
cd "$(dirname "$0")/.."
[ -x configure ] || autoreconf -fi
[ -f Makefile ] || ./configure ${CONFIGURE_FLAGS:-}
make -j"$(nproc)" >/dev/null
