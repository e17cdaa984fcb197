#!/bin/sh
# valgrind.sh PROGRAM [ARGS...] - run a unit suite under memcheck; any error
# or definite leak fails it. Suppressions, each with its reason, are in
# tests/valgrind.supp. Check runs the tests in this process (no fork), so
# that memcheck sees them, and gets time for the slowdown.
exec env CK_FORK=no CK_DEFAULT_TIMEOUT=600 valgrind -q --error-exitcode=99 \
	--leak-check=full --errors-for-leak-kinds=definite \
	--show-possibly-lost=no --track-origins=yes \
	--suppressions="$(dirname "$0")/valgrind.supp" "$@"
