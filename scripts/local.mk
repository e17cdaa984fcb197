# scripts/local.mk - operator and developer scripts; they source the shell
# harness tests/lib.sh (in EXTRA_DIST through tests/local.mk)

dist_noinst_SCRIPTS += \
	%D%/install-deps.sh \
	%D%/build.sh \
	%D%/check.sh \
	%D%/run-local.sh \
	%D%/test-system.sh \
	%D%/integration-test.sh \
	%D%/bench.sh \
	%D%/bench-drain.sh \
	%D%/test-package.sh \
	%D%/test-upgrade.sh
EXTRA_DIST += .ci/run doc/benchmarks.md
# the reference servers bench.sh builds and measures diplom against
EXTRA_DIST += bench/relay.c bench/ingest.lua bench/uuid-cost.c

# Figures for doc/benchmarks.md, against the reference servers in the same
# run; asserts nothing. BENCH_ARGS: bench.sh's options (--short, --rows).
bench: all
	$(SCRIPT_ENV) bash $(srcdir)/%D%/bench.sh $(BENCH_ARGS)
.PHONY: bench

# Persistence harness, backend switch, integration and load runs
# against stacks the scripts start themselves (free loopback ports).
dist_noinst_SCRIPTS += \
	%D%/switch-queue.sh \
	%D%/verify-persistence.sh \
	%D%/integration-stack.sh \
	%D%/load-test.sh
SCRIPT_ENV = top_builddir='$(abs_top_builddir)' top_srcdir='$(abs_top_srcdir)'

integration-test: all
	$(SCRIPT_ENV) bash $(srcdir)/%D%/integration-stack.sh
load-test: all
	$(SCRIPT_ENV) bash $(srcdir)/%D%/load-test.sh
verify-persistence: all
	$(SCRIPT_ENV) bash $(srcdir)/%D%/verify-persistence.sh
.PHONY: integration-test load-test verify-persistence

# Docker: docker/Dockerfile and docker/docker-compose.yml built and run
# (root; Docker is installed and started when missing, see the scripts).
# make docker-up brings the stack up on http://127.0.0.1:8080 (QUEUE_TYPE=nats
# for the broker); make docker-down stops it, DOCKER_DOWN_FLAGS=-v removes
# its volumes too; make docker-test is the test CI runs.
dist_noinst_SCRIPTS += \
	%D%/docker-lib.sh \
	%D%/docker-stack.sh \
	%D%/docker-test.sh
docker-up:
	$(SCRIPT_ENV) bash $(srcdir)/%D%/docker-stack.sh up
docker-down:
	$(SCRIPT_ENV) bash $(srcdir)/%D%/docker-stack.sh down $(DOCKER_DOWN_FLAGS)
docker-test: all
	$(SCRIPT_ENV) bash $(srcdir)/%D%/docker-test.sh
.PHONY: docker-up docker-down docker-test
