# systemd/local.mk - the unit files, installed into systemdsystemunitdir
# (configure --with-systemdsystemunitdir; the Debian package uses
# /lib/systemd/system, the default stays under ${prefix} so that distcheck
# can install as a normal user).

systemdsystemunit_DATA = \
	systemd/diplomd@.service \
	systemd/diplom.target \
	systemd/diplom-nats.service

# the broker's settings, and those with the one user diplom-nats.service
# lets in
dist_pkgdata_DATA = systemd/diplom-nats.conf systemd/diplom-nats-auth.conf

EXTRA_DIST += \
	systemd/diplomd@.service.in \
	systemd/diplom.target \
	systemd/diplom-nats.service

# examples the Debian package ships in /usr/share/doc/diplom/examples: the
# drop-ins of SECURITY.md and a Prometheus configuration for the roles
EXTRA_DIST += \
	systemd/diplomd-security.conf \
	systemd/diplomd-gateway-security.conf \
	monitoring/prometheus.yml
CLEANFILES += systemd/diplomd@.service

# a daemon built without libsystemd sends no watchdog messages: no watchdog
if HAVE_LIBSYSTEMD
SYSTEMD_WATCHDOG = WatchdogSec=30s
else
SYSTEMD_WATCHDOG = \# WatchdogSec: this build has no libsystemd to send WATCHDOG=1
endif

# ExecStart names the daemon where this build installs it; sed, not
# config.status, so that ${prefix} is fully expanded.
systemd/diplomd@.service: $(srcdir)/systemd/diplomd@.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) systemd && \
	sed -e 's|@sbindir[@]|$(sbindir)|g' \
		-e 's|@service_type[@]|$(SYSTEMD_SERVICE_TYPE)|g' \
		-e 's|@watchdog[@]|$(SYSTEMD_WATCHDOG)|g' \
		$(srcdir)/systemd/diplomd@.service.in >$@.tmp && mv $@.tmp $@
