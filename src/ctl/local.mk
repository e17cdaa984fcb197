# src/ctl/local.mk - diplomctl and the library its tests link
#
# diplomctl talks to the roles over HTTP (libcurl, json-c) and reads the
# settings as diplomd does, with libdiplom's config.c: it links libdiplom
# (and so its libraries) behind its own small library. The default file is
# the package's, $(sysconfdir)/default/diplom (/etc/default/diplom).

CTL_CFLAGS = $(DIPLOM_CFLAGS) \
	-DCTL_DEFAULT_FILE='"$(sysconfdir)/default/diplom"'

noinst_LIBRARIES += %D%/libctl.a
%C%_libctl_a_CFLAGS = $(AM_CFLAGS) $(CTL_CFLAGS)
%C%_libctl_a_SOURCES = \
	%D%/args.c %D%/args.h \
	%D%/defaults.c %D%/defaults.h \
	%D%/client.c %D%/client.h \
	%D%/ctl.c %D%/ctl.h \
	%D%/status.c %D%/status.h \
	%D%/switch.c

sbin_PROGRAMS += %D%/diplomctl
%C%_diplomctl_SOURCES = %D%/main.c
%C%_diplomctl_CFLAGS = $(AM_CFLAGS) $(CTL_CFLAGS)
%C%_diplomctl_LDADD = %D%/libctl.a src/libdiplom.a $(DIPLOM_LIBS)
