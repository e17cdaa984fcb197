# fuzz/local.mk - libFuzzer targets: built with clang by scripts/fuzz.sh
# (make fuzz), and replayed without libFuzzer by tests/fuzz-replay.sh, which
# runs every seed and regression input through the same entry functions.

FUZZ_REPLAY = \
	%D%/replay_message \
	%D%/replay_ingest \
	%D%/replay_result \
	%D%/replay_config \
	%D%/replay_http \
	%D%/replay_nats
# built for make check only, through the test's dependency below
EXTRA_PROGRAMS = $(FUZZ_REPLAY)
CLEANFILES += $(FUZZ_REPLAY)

FUZZ_REPLAY_SOURCES = %D%/replay.c %D%/fuzz.h
FUZZ_REPLAY_CFLAGS = $(AM_CFLAGS) $(DIPLOM_CFLAGS)
FUZZ_REPLAY_LDADD = src/libdiplom.a $(DIPLOM_LIBS)

%C%_replay_message_SOURCES = %D%/fuzz_message.c $(FUZZ_REPLAY_SOURCES)
%C%_replay_message_CFLAGS = $(FUZZ_REPLAY_CFLAGS)
%C%_replay_message_LDADD = $(FUZZ_REPLAY_LDADD)
%C%_replay_ingest_SOURCES = %D%/fuzz_ingest.c $(FUZZ_REPLAY_SOURCES)
%C%_replay_ingest_CFLAGS = $(FUZZ_REPLAY_CFLAGS)
%C%_replay_ingest_LDADD = $(FUZZ_REPLAY_LDADD)
%C%_replay_result_SOURCES = %D%/fuzz_result.c $(FUZZ_REPLAY_SOURCES)
%C%_replay_result_CFLAGS = $(FUZZ_REPLAY_CFLAGS)
%C%_replay_result_LDADD = $(FUZZ_REPLAY_LDADD)
%C%_replay_config_SOURCES = %D%/fuzz_config.c $(FUZZ_REPLAY_SOURCES)
%C%_replay_config_CFLAGS = $(FUZZ_REPLAY_CFLAGS)
%C%_replay_config_LDADD = $(FUZZ_REPLAY_LDADD)
%C%_replay_http_SOURCES = %D%/fuzz_http.c $(FUZZ_REPLAY_SOURCES)
%C%_replay_http_CFLAGS = $(FUZZ_REPLAY_CFLAGS)
%C%_replay_http_LDADD = $(FUZZ_REPLAY_LDADD)
%C%_replay_nats_SOURCES = %D%/fuzz_nats.c $(FUZZ_REPLAY_SOURCES)
%C%_replay_nats_CFLAGS = $(FUZZ_REPLAY_CFLAGS)
%C%_replay_nats_LDADD = $(FUZZ_REPLAY_LDADD)

tests/fuzz-replay.log: $(FUZZ_REPLAY)

EXTRA_DIST += %D%/corpus %D%/regressions doc/fuzzing.md
dist_noinst_SCRIPTS += scripts/fuzz.sh

# make fuzz [FUZZ_SECONDS=N] [FUZZ_TARGETS='message http']: build every
# target with clang and run each for N seconds; fails on any finding.
FUZZ_SECONDS = 60
FUZZ_TARGETS = message ingest result config http nats
fuzz:
	top_srcdir='$(abs_top_srcdir)' top_builddir='$(abs_top_builddir)' \
	PACKAGE_VERSION='$(PACKAGE_VERSION)' FUZZ_SECONDS='$(FUZZ_SECONDS)' \
	FUZZ_TARGETS='$(FUZZ_TARGETS)' bash $(srcdir)/scripts/fuzz.sh
clean-local: clean-fuzz
clean-fuzz:
	rm -rf fuzz-out
.PHONY: fuzz clean-fuzz
