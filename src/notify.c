/* notify.c - sd_notify(3) messages, when built with libsystemd */
#include <stdio.h>
#include <stdlib.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "notify.h"

#ifdef HAVE_LIBSYSTEMD
static void
notify(const char *what, const char *status)
{
	if (status != NULL)
		sd_notifyf(0, "%s%sSTATUS=%s", what, what[0] != '\0' ? "\n" :
		    "", status);
	else
		sd_notify(0, what);
}

int64_t
notify_watchdog_ms(void)
{
	uint64_t usec = 0;

	if (sd_watchdog_enabled(0, &usec) <= 0)
		return 0;
	return (int64_t)(usec / 1000);
}
#else
static void
notify(const char *what, const char *status)
{
	(void)what;
	(void)status;
}

int64_t
notify_watchdog_ms(void)
{
	return 0;
}
#endif

void
notify_ready(const char *status)
{
	notify("READY=1", status);
}

void
notify_stopping(void)
{
	notify("STOPPING=1", "draining");
}

void
notify_reloading(void)
{
	notify("RELOADING=1", "reloading");
}

void
notify_status(const char *status)
{
	notify("", status);
}

void
notify_watchdog(void)
{
	notify("WATCHDOG=1", NULL);
}

int
notify_wanted(void)
{
#ifdef HAVE_LIBSYSTEMD
	return getenv("NOTIFY_SOCKET") != NULL;
#else
	return 0;
#endif
}
