/*
 * check_util.h - helpers the Check suites share (tu_ for test utility).
 * check_util.c needs only libc, SQLite and Check, so the loadgen's suite
 * links it too; check_util_queue.c needs the daemon's library.
 */
#ifndef DIPLOM_CHECK_UTIL_H
#define DIPLOM_CHECK_UTIL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "message.h"
#include "queue.h"

/* Sleep for ms milliseconds. */
void tu_sleep_ms(int ms);

/* A loopback TCP port nothing listens on right now. */
int tu_free_port(void);

/* Whether something accepts connections on loopback port. */
int tu_port_open(int port);

/* Make a fresh directory name.XXXXXX under $TMPDIR (or /tmp) into dir. */
void tu_temp_dir(char *dir, size_t len, const char *name);

/* Remove an SQLite database and the -wal and -shm files beside it. */
void tu_remove_db(const char *path);

/* The integer sql yields from the database at path; asserts a row. */
int64_t tu_db_int(const char *path, const char *sql);

/* A test data_message: id, source "test", a fixed time; payload may be NULL. */
struct data_message *tu_new_msg(const char *id, const char *payload);

/* The outcome of one publish; the callback may run on any thread. */
struct tu_outcome {
	pthread_mutex_t lock;	/* guards done, status, reason */
	pthread_cond_t done_cv;	/* signalled on every callback */
	int done;		/* callbacks seen: must end up exactly 1 */
	int status;
	char reason[128];
};

/* Ready o for one publish. */
void tu_outcome_init(struct tu_outcome *o);

/* The queue_publish callback that fills in a struct tu_outcome. */
void tu_outcome_cb(void *arg, int status, const char *reason);

/* Wait (at most 5 s) for exactly one callback; returns its status. */
int tu_outcome_wait(struct tu_outcome *o, char *reason, size_t rlen);

/* Publish m (the queue takes it) and wait; returns the outcome's status. */
int tu_publish(struct queue *q, struct data_message *m, char *reason,
    size_t rlen);

/* Publish a new message and assert it was accepted. */
void tu_publish_ok(struct queue *q, const char *id, const char *payload);

/* The queue's counters, by value. */
struct queue_stats tu_queue_stats(struct queue *q);

#endif
