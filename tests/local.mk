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
# the daemon and the loadgen set theirs in src/local.mk. What the suites
# share (%D%/check_util*.[ch]) is a library of its own, built for make check.
CHECK_SUITES = \
	%D%/check_auth \
	%D%/check_config \
	%D%/check_ctl \
	%D%/check_event_loop \
	%D%/check_histogram \
	%D%/check_http_client \
	%D%/check_http_server \
	%D%/check_loadgen \
	%D%/check_log \
	%D%/check_message \
	%D%/check_queue \
	%D%/check_queue_memory \
	%D%/check_queue_nats \
	%D%/check_rate_limit \
	%D%/check_result_store \
	%D%/check_role_processor \
	%D%/check_worker_pool
if HAVE_CHECK
check_LIBRARIES = %D%/libcheckutil.a
check_PROGRAMS += $(CHECK_SUITES)
TESTS += $(CHECK_SUITES)
endif
%C%_libcheckutil_a_CFLAGS = $(TEST_CFLAGS)
%C%_libcheckutil_a_SOURCES = %D%/check_util.c %D%/check_util.h \
	%D%/check_util_queue.c
EXTRA_DIST += %D%/check_main.h
LDADD = %D%/libcheckutil.a src/libdiplom.a $(DIPLOM_LIBS) $(CHECK_LIBS)

# The compile flags have no default a suite could take alone (AM_CFLAGS
# serves src/ too), so each suite names them.
TEST_CFLAGS = $(AM_CFLAGS) $(DIPLOM_CFLAGS) $(CHECK_CFLAGS)
%C%_check_auth_CFLAGS = $(TEST_CFLAGS)
%C%_check_config_CFLAGS = $(TEST_CFLAGS)
# diplomctl's suite links its library before the daemon's
%C%_check_ctl_CFLAGS = $(TEST_CFLAGS)
%C%_check_ctl_LDADD = %D%/libcheckutil.a src/ctl/libctl.a src/libdiplom.a \
	$(DIPLOM_LIBS) $(CHECK_LIBS)
%C%_check_event_loop_CFLAGS = $(TEST_CFLAGS)
%C%_check_histogram_CFLAGS = $(TEST_CFLAGS)
%C%_check_http_client_CFLAGS = $(TEST_CFLAGS)
%C%_check_http_server_CFLAGS = $(TEST_CFLAGS)
# the loadgen's suite links the loadgen's library, not the daemon's
%C%_check_loadgen_CFLAGS = $(AM_CFLAGS) $(LOADGEN_CFLAGS) $(CHECK_CFLAGS)
# and of the shared helpers only check_util.c, which needs nothing of src/
%C%_check_loadgen_LDADD = %D%/libcheckutil.a src/loadgen/libloadgen.a \
	$(LOADGEN_LIBS) $(CHECK_LIBS)
%C%_check_message_CFLAGS = $(TEST_CFLAGS)
%C%_check_queue_CFLAGS = $(TEST_CFLAGS)
%C%_check_queue_memory_CFLAGS = $(TEST_CFLAGS)
%C%_check_queue_nats_CFLAGS = $(TEST_CFLAGS)
%C%_check_rate_limit_CFLAGS = $(TEST_CFLAGS)
%C%_check_result_store_CFLAGS = $(TEST_CFLAGS)
%C%_check_role_processor_CFLAGS = $(TEST_CFLAGS)
%C%_check_worker_pool_CFLAGS = $(TEST_CFLAGS)

SHELL_TESTS = \
	%D%/seed-flow.sh \
	%D%/batch-ingest.sh \
	%D%/forward-batch.sh \
	%D%/back-pressure.sh \
	%D%/graceful-drain.sh \
	%D%/bad-input.sh \
	%D%/tls-ciphers.sh \
	%D%/http-framing.sh \
	%D%/hostile-input.sh \
	%D%/local-scripts.sh \
	%D%/dead-next-hop.sh \
	%D%/metrics.sh \
	%D%/loadgen.sh \
	%D%/gateway-upstream-bytes.sh \
	%D%/idempotency.sh \
	%D%/tenancy.sh \
	%D%/idempotency-conflict.sh \
	%D%/notify.sh \
	%D%/tls.sh \
	%D%/internal-token.sh \
	%D%/gateway-auth.sh \
	%D%/gateway-rate-admin.sh \
	%D%/retention.sh \
	%D%/memory-processors.sh \
	%D%/openapi.sh \
	%D%/prometheus.sh \
	%D%/diplomctl.sh \
	%D%/tls.sh \
	%D%/internal-token.sh \
	%D%/gateway-auth.sh
NATS_SHELL_TESTS = \
	%D%/nats-persistence.sh \
	%D%/nats-processor-crash.sh \
	%D%/nats-broker-restart.sh \
	%D%/nats-back-pressure.sh \
	%D%/nats-broker-late.sh \
	%D%/nats-two-processors.sh \
	%D%/nats-three-processors.sh \
	%D%/nats-poison.sh \
	%D%/nats-enqueue-config.sh \
	%D%/nats-max-payload.sh \
	%D%/nats-large-backlog.sh \
	%D%/nats-idempotency.sh \
	%D%/nats-idempotency-conflict.sh \
	%D%/nats-cluster.sh \
	%D%/nats-diplomctl.sh \
	%D%/nats-auth.sh \
	%D%/diplomctl-switch.sh \
	%D%/store-full.sh
# man pages against --help; the compose file; scripts/verify-persistence.sh
# (a small run) and scripts/switch-queue.sh
# attacks, each with a normal client that must not notice them
ABUSE_SHELL_TESTS = \
	%D%/abuse-burst-upstream.sh \
	%D%/abuse-connections.sh \
	%D%/abuse-uploads.sh \
	%D%/abuse-preauth.sh \
	%D%/abuse-prefix.sh \
	%D%/abuse-bodies.sh \
	%D%/abuse-http.sh
OTHER_SHELL_TESTS = \
	%D%/man-options.sh \
	%D%/docker-compose.sh \
	%D%/monitoring-compose.sh \
	%D%/verify-persistence.sh \
	%D%/switch-queue.sh
TESTS += $(SHELL_TESTS) $(NATS_SHELL_TESTS) $(ABUSE_SHELL_TESTS) \
	$(OTHER_SHELL_TESTS)
dist_check_SCRIPTS += $(SHELL_TESTS) $(NATS_SHELL_TESTS) \
	$(ABUSE_SHELL_TESTS) $(OTHER_SHELL_TESTS)
EXTRA_DIST += %D%/lib.sh %D%/lib-cluster.sh %D%/fake-systemctl
# the packaged /etc/default/diplom, which check_ctl validates
EXTRA_DIST += debian/diplom.default
# doc/openapi.yaml against a linter and the real answers (openapi.sh)
EXTRA_DIST += %D%/openapi-check.py doc/openapi.yaml
# NKeys, an operator and user creds for nats-auth.sh
EXTRA_DIST += %D%/nats-keys.py %D%/forward-batch.py
EXTRA_DIST += docker/Dockerfile docker/Dockerfile.dockerignore \
	docker/nats.Dockerfile docker/nats.Dockerfile.dockerignore \
	docker/docker-compose.yml docker/nats-auth.conf
# the monitoring: alert rules and their unit tests, the dashboard, and what
# scrapes in Docker (tests/prometheus.sh, tests/monitoring-compose.sh)
EXTRA_DIST += monitoring/diplom-rules.yml monitoring/diplom-rules.test.yml \
	monitoring/grafana-dashboard.json docker/prometheus.yml \
	docker/prometheus.Dockerfile docker/prometheus.Dockerfile.dockerignore \
	docker/monitoring-compose.yml

# The suites of concurrent code and a high-concurrency integration test,
# for the ThreadSanitizer build (./configure --enable-tsan): make
# check-concurrency. Every unit suite under valgrind's memcheck: make
# check-valgrind (a plain build; CK_FORK=no, so a suite stops at its
# first failure).
CONCURRENCY_TESTS = \
	%D%/check_auth \
	%D%/check_event_loop \
	%D%/check_histogram \
	%D%/check_http_client \
	%D%/check_http_server \
	%D%/check_queue \
	%D%/check_queue_memory \
	%D%/check_queue_nats \
	%D%/check_rate_limit \
	%D%/check_result_store \
	%D%/check_worker_pool \
	%D%/check_log \
	%D%/abuse-burst-upstream.sh \
	%D%/notify.sh \
	%D%/tls.sh \
	%D%/internal-token.sh \
	%D%/gateway-auth.sh \
	%D%/forward-batch.sh \
	%D%/retention.sh \
	%D%/abuse-preauth.sh \
	%D%/nats-idempotency-conflict.sh
check-concurrency: all
	$(MAKE) $(AM_MAKEFLAGS) check TESTS="$(CONCURRENCY_TESTS)"
check-valgrind: all
	$(MAKE) $(AM_MAKEFLAGS) check TESTS="$(CHECK_SUITES)" \
		LOG_COMPILER="$(SHELL) $(abs_srcdir)/%D%/valgrind.sh"
.PHONY: check-concurrency check-valgrind
dist_check_SCRIPTS += %D%/valgrind.sh
EXTRA_DIST += %D%/valgrind.supp

# --- fuzz targets: seeds and regressions replayed (programs: fuzz/local.mk)
TESTS += %D%/fuzz-replay.sh
dist_check_SCRIPTS += %D%/fuzz-replay.sh
CLEANFILES += %D%/attack.lock
