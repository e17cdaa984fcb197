/* queue.h - the queue backend interface; roles never look inside a backend */
#ifndef DIPLOM_QUEUE_H
#define DIPLOM_QUEUE_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "histogram.h"
#include "message.h"

/* Error codes, negative errno style. */
#define QUEUE_EFULL	(-ENOSPC)	/* backend at capacity: 503 */
#define QUEUE_EUNAVAIL	(-EAGAIN)	/* backend unreachable: 503 */
#define QUEUE_ECLOSED	(-ESHUTDOWN)	/* shut down and drained */
#define QUEUE_EINVAL	(-EINVAL)
/* a keyed message's key holds another body within the window: 422 */
#define QUEUE_ECONFLICT	(-EEXIST)

/* Why a publish is QUEUE_ECONFLICT, as every hop tells the client. */
#define QUEUE_CONFLICT_REASON \
    "Idempotency-Key reused with a different request body"

/* One message handed to a worker; settle it with ack or reject. */
struct delivery {
	struct data_message *msg;	/* decoded, or NULL: see data */
	const char *data;		/* raw bytes when msg is NULL */
	size_t len;
	const char *id;			/* id known from outside the body, or NULL */
	uint64_t num_delivered;		/* 1 the first time */
	int state;			/* the front door's: held or settled */
};

enum reject_how {
	REJECT_RETRY,		/* deliver again later */
	REJECT_TERM,		/* never deliver again */
};

struct queue_stats {
	uint64_t enqueued;	/* TotalEnqueued */
	uint64_t dequeued;	/* TotalDequeued */
	int64_t current_size;	/* backlog: waiting + in flight */
	int64_t ack_pending;	/* of it, delivered and not yet settled */
	uint64_t redelivered;
	bool healthy;
	char reason[128];	/* why not healthy */
};

struct queue;

/* Reports a publish's outcome: 0 or a QUEUE_E* code, and a reason. */
typedef void (*queue_publish_cb)(void *arg, int status, const char *reason);

/*
 * A backend. Callers never use these directly: every operation goes through
 * the queue_* functions below, which trace it, count it for the metrics and
 * check that each delivery is settled exactly once.
 */
struct queue_ops {
	const char *name;
	/*
	 * The backend lives inside the processor: the other roles hand
	 * messages to the processor's POST /enqueue instead of opening it.
	 */
	bool in_processor;
	/* The backend's own settings, NULL: none; see config_settings(). */
	const struct config_group *settings;
	/*
	 * Open; a backend that needs a broker may return before reaching it.
	 * Sets (*q)->batch.
	 */
	int (*open)(struct queue **q, const struct config *cfg, char **cause);
	/*
	 * Take ownership of msg and store it. The outcome is reported through
	 * queue_report(q, cb, arg, ...) exactly once, possibly before publish
	 * returns, possibly from another thread.
	 */
	void (*publish)(struct queue *q, struct data_message *msg,
	    queue_publish_cb cb, void *arg);
	/*
	 * Wait up to timeout_ms for up to max deliveries. Returns how many, or
	 * QUEUE_ECLOSED once shut down with nothing left to hand out.
	 */
	int (*receive)(struct queue *q, struct delivery **out, int max,
	    int timeout_ms);
	/* Settle a delivery: done. Frees it. */
	int (*ack)(struct queue *q, struct delivery *d);
	/* Settle a delivery: not done. Frees it. */
	int (*reject)(struct queue *q, struct delivery *d, enum reject_how how);
	void (*stats)(struct queue *q, struct queue_stats *st);
	/*
	 * Stop taking new messages. Receive hands out what the backend must
	 * still deliver (one inside the processor: all it holds; a broker:
	 * nothing new, the broker keeps the rest), then
	 * returns QUEUE_ECLOSED.
	 */
	void (*shutdown)(struct queue *q);
	/* Free everything; deliveries must have been settled. */
	void (*close)(struct queue *q);
};

/* The first member of every backend's queue. */
struct queue {
	const struct queue_ops *ops;
	int batch;		/* deliveries a worker takes at a time */
	/* deliveries after which the processor gives a message up; 0: never */
	uint64_t max_deliveries;
	/* kept by the front door, for the metrics and the settle check */
	atomic_uint_fast64_t published, refused;	/* publish outcomes */
	atomic_uint_fast64_t received, acked, retried, terminated;
	/* from a publish to its outcome, whatever it was */
	struct histogram publish_latency;
};

/* What the front door counted. */
struct queue_counters {
	uint64_t published;	/* publishes the backend took */
	uint64_t refused;	/* publishes it did not */
	uint64_t received;	/* deliveries handed out */
	uint64_t acked;
	uint64_t retried;	/* rejected to be delivered again */
	uint64_t terminated;	/* rejected for good */
};

/* The backend at index i in a fixed order, NULL past the last. */
const struct queue_ops *queue_backend_at(size_t i);
/*
 * Find the backend called name; ops may be NULL to only check the name.
 * An unknown name is -EINVAL, with a cause that lists the known ones
 * (cause may be NULL).
 */
int queue_lookup(const char *name, const struct queue_ops **ops,
    char **cause);
/* Whether the backend called name lives inside the processor. */
bool queue_in_processor(const char *name);

int queue_open(const char *name, const struct config *cfg, struct queue **q,
    char **cause);
/* Take ownership of msg; cb reports the outcome exactly once. */
void queue_publish(struct queue *q, struct data_message *msg,
    queue_publish_cb cb, void *arg);
/* For backends: report a publish's outcome to its caller, counted. */
void queue_report(struct queue *q, queue_publish_cb cb, void *arg,
    int status, const char *reason);
/* Up to max deliveries, or QUEUE_ECLOSED: see struct queue_ops. */
int queue_receive(struct queue *q, struct delivery **out, int max,
    int timeout_ms);
int queue_ack(struct queue *q, struct delivery *d);
int queue_reject(struct queue *q, struct delivery *d, enum reject_how how);
void queue_stats(struct queue *q, struct queue_stats *st);
void queue_counters(struct queue *q, struct queue_counters *c);
/* The front door's histograms, Prometheus text: the publish latency. */
void queue_write_histograms(struct queue *q, FILE *out);
/* How many deliveries a worker should ask for at a time. */
int queue_batch(const struct queue *q);
/*
 * Deliveries of one message that end without a result (the processor
 * stopped while it held it) before the processor stores it as failed
 * instead; 0 for no limit.
 */
uint64_t queue_max_deliveries(const struct queue *q);
void queue_shutdown(struct queue *q);
/* Free the queue; NULL is fine. Logs deliveries never settled. */
void queue_close(struct queue *q);

#endif
