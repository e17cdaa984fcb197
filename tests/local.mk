# tests/local.mk - Check unit suites and shell integration tests, all TAP

TEST_EXTENSIONS = .sh
LOG_DRIVER = env AM_TAP_AWK='$(AWK)' $(SHELL) \
	$(top_srcdir)/build-aux/tap-driver.sh
SH_LOG_DRIVER = $(LOG_DRIVER)
AM_TESTS_ENVIRONMENT = \
	top_builddir='$(abs_top_builddir)' top_srcdir='$(abs_top_srcdir)'; \
	export top_builddir top_srcdir;

TEST_CFLAGS = $(AM_CFLAGS) $(DIPLOM_CFLAGS) $(CHECK_CFLAGS)
TEST_LIBS = src/libdiplom.a $(DIPLOM_LIBS) $(CHECK_LIBS)

if HAVE_CHECK
check_PROGRAMS += \
	tests/check_message \
	tests/check_config \
	tests/check_result_store \
	tests/check_queue_memory \
	tests/check_queue_nats \
	tests/check_event_loop
TESTS += $(check_PROGRAMS)
endif

tests_check_message_SOURCES = tests/check_message.c tests/check_main.h
tests_check_message_CFLAGS = $(TEST_CFLAGS)
tests_check_message_LDADD = $(TEST_LIBS)
tests_check_config_SOURCES = tests/check_config.c tests/check_main.h
tests_check_config_CFLAGS = $(TEST_CFLAGS)
tests_check_config_LDADD = $(TEST_LIBS)
tests_check_result_store_SOURCES = tests/check_result_store.c tests/check_main.h
tests_check_result_store_CFLAGS = $(TEST_CFLAGS)
tests_check_result_store_LDADD = $(TEST_LIBS)
tests_check_queue_memory_SOURCES = tests/check_queue_memory.c tests/check_main.h
tests_check_queue_memory_CFLAGS = $(TEST_CFLAGS)
tests_check_queue_memory_LDADD = $(TEST_LIBS)

tests_check_event_loop_SOURCES = tests/check_event_loop.c tests/check_main.h
tests_check_event_loop_CFLAGS = $(TEST_CFLAGS)
tests_check_event_loop_LDADD = $(TEST_LIBS)

tests_check_queue_nats_SOURCES = tests/check_queue_nats.c tests/check_main.h
tests_check_queue_nats_CFLAGS = $(TEST_CFLAGS)
tests_check_queue_nats_LDADD = $(TEST_LIBS)

SHELL_TESTS = \
	tests/seed-flow.sh \
	tests/back-pressure.sh \
	tests/graceful-drain.sh \
	tests/bad-input.sh \
	tests/local-scripts.sh \
	tests/dead-next-hop.sh \
	tests/metrics.sh
TESTS += $(SHELL_TESTS)
dist_check_SCRIPTS += $(SHELL_TESTS)
EXTRA_DIST += tests/lib.sh

# diplom-loadgen: unit suite and the integration test against a live stack
# (TESTS already holds $(check_PROGRAMS))
if HAVE_CHECK
check_PROGRAMS += tests/check_loadgen
endif
tests_check_loadgen_SOURCES = tests/check_loadgen.c tests/check_main.h
tests_check_loadgen_CFLAGS = $(AM_CFLAGS) $(LOADGEN_CFLAGS) $(CHECK_CFLAGS)
tests_check_loadgen_LDADD = src/loadgen/libloadgen.a $(LOADGEN_LIBS) \
	$(CHECK_LIBS)
TESTS += tests/loadgen.sh
dist_check_SCRIPTS += tests/loadgen.sh

NATS_SHELL_TESTS = \
	tests/nats-persistence.sh \
	tests/nats-processor-crash.sh \
	tests/nats-broker-restart.sh \
	tests/nats-back-pressure.sh \
	tests/nats-broker-late.sh \
	tests/nats-two-processors.sh \
	tests/nats-poison.sh \
	tests/nats-enqueue-config.sh
TESTS += $(NATS_SHELL_TESTS)
dist_check_SCRIPTS += $(NATS_SHELL_TESTS)

TESTS += tests/man-options.sh tests/docker-compose.sh
dist_check_SCRIPTS += tests/man-options.sh tests/docker-compose.sh
EXTRA_DIST += docker/Dockerfile docker/Dockerfile.dockerignore \
	docker/docker-compose.yml

# scripts/verify-persistence.sh (small run) and scripts/switch-queue.sh
TESTS += tests/verify-persistence.sh tests/switch-queue.sh
dist_check_SCRIPTS += tests/verify-persistence.sh tests/switch-queue.sh
