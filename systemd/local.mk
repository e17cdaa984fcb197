# systemd/local.mk - the unit files, installed into systemdsystemunitdir
# (configure --with-systemdsystemunitdir; the Debian package uses
# /lib/systemd/system, the default stays under ${prefix} so that distcheck
# can install as a normal user).

systemdsystemunit_DATA = \
	systemd/diplomd@.service \
	systemd/diplom.target \
	systemd/diplom-nats.service

# the broker's settings, read by diplom-nats.service
dist_pkgdata_DATA = systemd/diplom-nats.conf

EXTRA_DIST += \
	systemd/diplomd@.service.in \
	systemd/diplom.target \
	systemd/diplom-nats.service
CLEANFILES += systemd/diplomd@.service

# ExecStart names the daemon where this build installs it; sed, not
# config.status, so that ${prefix} is fully expanded.
systemd/diplomd@.service: $(srcdir)/systemd/diplomd@.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) systemd && \
	sed -e 's|@sbindir[@]|$(sbindir)|g' \
		$(srcdir)/systemd/diplomd@.service.in >$@.tmp && mv $@.tmp $@
