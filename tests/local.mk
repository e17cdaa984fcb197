# tests/local.mk - Check unit suites and shell integration tests, all TAP

TEST_EXTENSIONS = .sh
LOG_DRIVER = env AM_TAP_AWK='$(AWK)' $(SHELL) \
	$(top_srcdir)/build-aux/tap-driver.sh
SH_LOG_DRIVER = $(LOG_DRIVER)
AM_TESTS_ENVIRONMENT = \
	top_builddir='$(abs_top_builddir)' top_srcdir='$(abs_top_srcdir)'; \
	export top_builddir top_srcdir;

# One Check suite per module of src/, %D%/check_<module>.c, which is also
# the source automake assumes for a program that names none. A program
# without its own _LDADD links $(LDADD): in this tree only the suites do,
# the daemon and the loadgen set theirs in src/local.mk.
CHECK_SUITES = \
	%D%/check_config \
	%D%/check_event_loop \
	%D%/check_http_client \
	%D%/check_http_server \
	%D%/check_loadgen \
	%D%/check_message \
	%D%/check_queue_memory \
	%D%/check_queue_nats \
	%D%/check_result_store \
	%D%/check_worker_pool
if HAVE_CHECK
check_PROGRAMS += $(CHECK_SUITES)
TESTS += $(CHECK_SUITES)
endif
EXTRA_DIST += %D%/check_main.h
LDADD = src/libdiplom.a $(DIPLOM_LIBS) $(CHECK_LIBS)

# The compile flags have no default a suite could take alone (AM_CFLAGS
# serves src/ too), so each suite names them.
TEST_CFLAGS = $(AM_CFLAGS) $(DIPLOM_CFLAGS) $(CHECK_CFLAGS)
%C%_check_config_CFLAGS = $(TEST_CFLAGS)
%C%_check_event_loop_CFLAGS = $(TEST_CFLAGS)
%C%_check_http_client_CFLAGS = $(TEST_CFLAGS)
%C%_check_http_server_CFLAGS = $(TEST_CFLAGS)
# the loadgen's suite links the loadgen's library, not the daemon's
%C%_check_loadgen_CFLAGS = $(AM_CFLAGS) $(LOADGEN_CFLAGS) $(CHECK_CFLAGS)
%C%_check_loadgen_LDADD = src/loadgen/libloadgen.a $(LOADGEN_LIBS) \
	$(CHECK_LIBS)
%C%_check_message_CFLAGS = $(TEST_CFLAGS)
%C%_check_queue_memory_CFLAGS = $(TEST_CFLAGS)
%C%_check_queue_nats_CFLAGS = $(TEST_CFLAGS)
%C%_check_result_store_CFLAGS = $(TEST_CFLAGS)
%C%_check_worker_pool_CFLAGS = $(TEST_CFLAGS)

SHELL_TESTS = \
	%D%/seed-flow.sh \
	%D%/back-pressure.sh \
	%D%/graceful-drain.sh \
	%D%/bad-input.sh \
	%D%/local-scripts.sh \
	%D%/dead-next-hop.sh \
	%D%/metrics.sh \
	%D%/loadgen.sh
NATS_SHELL_TESTS = \
	%D%/nats-persistence.sh \
	%D%/nats-processor-crash.sh \
	%D%/nats-broker-restart.sh \
	%D%/nats-back-pressure.sh \
	%D%/nats-broker-late.sh \
	%D%/nats-two-processors.sh \
	%D%/nats-poison.sh \
	%D%/nats-enqueue-config.sh
# man pages against --help; the compose file; scripts/verify-persistence.sh
# (a small run) and scripts/switch-queue.sh
OTHER_SHELL_TESTS = \
	%D%/man-options.sh \
	%D%/docker-compose.sh \
	%D%/verify-persistence.sh \
	%D%/switch-queue.sh
TESTS += $(SHELL_TESTS) $(NATS_SHELL_TESTS) $(OTHER_SHELL_TESTS)
dist_check_SCRIPTS += $(SHELL_TESTS) $(NATS_SHELL_TESTS) $(OTHER_SHELL_TESTS)
EXTRA_DIST += %D%/lib.sh
EXTRA_DIST += docker/Dockerfile docker/Dockerfile.dockerignore \
	docker/docker-compose.yml
