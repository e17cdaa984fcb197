# src/loadgen/local.mk - diplom-loadgen and the library its tests link
#
# The load generator talks to the daemon over HTTP only: it links libcurl,
# json-c and SQLite, and nothing of libdiplom. It may include the daemon's
# header-only helpers (clock.h, duration.h) through -I$(top_srcdir)/src.

LOADGEN_CFLAGS = $(CURL_CFLAGS) $(JSONC_CFLAGS) $(SQLITE_CFLAGS)
LOADGEN_LIBS = $(CURL_LIBS) $(JSONC_LIBS) $(SQLITE_LIBS)

noinst_LIBRARIES += %D%/libloadgen.a
%C%_libloadgen_a_CFLAGS = $(AM_CFLAGS) $(LOADGEN_CFLAGS)
%C%_libloadgen_a_SOURCES = \
	%D%/args.c %D%/args.h \
	%D%/stats.c %D%/stats.h \
	%D%/record.c %D%/record.h

bin_PROGRAMS += %D%/diplom-loadgen
%C%_diplom_loadgen_SOURCES = %D%/main.c
%C%_diplom_loadgen_CFLAGS = $(AM_CFLAGS) $(LOADGEN_CFLAGS)
%C%_diplom_loadgen_LDADD = %D%/libloadgen.a $(LOADGEN_LIBS)
