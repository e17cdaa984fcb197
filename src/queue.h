/* queue.h - the queue backend interface; roles never look inside a backend */
#ifndef DIPLOM_QUEUE_H
#define DIPLOM_QUEUE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "message.h"

/* Error codes, negative errno style. */
#define QUEUE_EFULL	(-ENOSPC)	/* backend at capacity: 503 */
#define QUEUE_EUNAVAIL	(-EAGAIN)	/* backend unreachable: 503 */
#define QUEUE_ECLOSED	(-ESHUTDOWN)	/* shut down and drained */
#define QUEUE_EINVAL	(-EINVAL)

/* One message handed to a worker; settle it with ack or reject. */
struct delivery {
	struct data_message *msg;	/* decoded, or NULL: see data */
	const char *data;		/* raw bytes when msg is NULL */
	size_t len;
	const char *id;			/* id known from outside the body, or NULL */
	uint64_t num_delivered;		/* 1 the first time */
};

enum reject_how {
	REJECT_RETRY,		/* deliver again later */
	REJECT_TERM,		/* never deliver again */
};

struct queue_stats {
	uint64_t enqueued;	/* TotalEnqueued */
	uint64_t dequeued;	/* TotalDequeued */
	int64_t current_size;	/* backlog: waiting + in flight */
	uint64_t redelivered;
	bool healthy;
	char reason[128];	/* why not healthy */
};

struct queue;

/* Reports a publish's outcome: 0 or a QUEUE_E* code, and a reason. */
typedef void (*queue_publish_cb)(void *arg, int status, const char *reason);

struct queue_ops {
	const char *name;
	/* Open; a backend that needs a broker may return before reaching it. */
	int (*open)(struct queue **q, const struct config *cfg, char **cause);
	/*
	 * Take ownership of msg and store it. The outcome is reported through
	 * cb exactly once, possibly before publish returns, possibly from
	 * another thread.
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
	 * still deliver (memory: all that is queued; nats: nothing new), then
	 * returns QUEUE_ECLOSED.
	 */
	void (*shutdown)(struct queue *q);
	/* Free everything; deliveries must have been settled. */
	void (*close)(struct queue *q);
};

extern const struct queue_ops queue_memory_ops;
extern const struct queue_ops queue_nats_ops;

/* NULL when the name is unknown. */
const struct queue_ops *queue_ops_lookup(const char *name);

struct queue {
	const struct queue_ops *ops;
};

#endif
