/* notify.h - readiness, status and watchdog for systemd's service manager */
#ifndef DIPLOM_NOTIFY_H
#define DIPLOM_NOTIFY_H

#include <stdint.h>

/*
 * Each does nothing outside systemd (no $NOTIFY_SOCKET), and in a build
 * without libsystemd.
 */
void notify_ready(const char *status);
void notify_stopping(void);
/* SIGHUP is being handled; notify_ready when done. */
void notify_reloading(void);
void notify_status(const char *status);
void notify_watchdog(void);
/* The watchdog interval systemd asks for in ms, 0 when it asks for none. */
int64_t notify_watchdog_ms(void);
/* Whether a service manager listens at all. */
int notify_wanted(void);

#endif
