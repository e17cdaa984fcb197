/* queue_nats_int.h - what the NATS JetStream backend's files share */
#ifndef DIPLOM_QUEUE_NATS_INT_H
#define DIPLOM_QUEUE_NATS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <nats/nats.h>

#include "queue.h"

#define NQ_CONSUMER		"messages-consumer"
/* The bucket of the idempotency keys' fingerprints: <stream>_KEYS. */
#define NQ_KEYS_SUFFIX		"_KEYS"
/* The server's duplicate window when ours is 0 ("its default"). */
#define NQ_DUP_WINDOW_DEFAULT_MS	120000
#define NQ_MSGID_HDR		"Nats-Msg-Id"
#define NQ_STATUS_HDR		"Status"
#define NQ_DESC_HDR		"Description"
#define NQ_ACK_PREFIX		"$JS.ACK."

#define NQ_PUB_WAIT_MS		1500	/* PubAck deadline: then 503 */
#define NQ_API_WAIT_MS		2000	/* stream/consumer API requests */
/*
 * Each request to the keys' bucket: binding a key takes up to three, so
 * a keyed message waits for a stalled broker about as long as a publish.
 */
#define NQ_KEYS_WAIT_MS		500
#define NQ_PULL_EXPIRES_MS	5000	/* life of one pull request */
#define NQ_PULL_GRACE_MS	2000	/* then we call a pull request lost */
/*
 * The prefetch window: ready plus requested messages, at most this many
 * and about this many bytes. Small messages flow a thousand to a request,
 * so the processor's wakeups and round trips are few; large ones are
 * bounded by bytes. A message counts its data and this much for subject,
 * reply and headers, as the server counts them.
 */
#define NQ_PULL_WINDOW		1024
#define NQ_PULL_BYTES		(8 << 20)
#define NQ_MSG_OVERHEAD		512
/*
 * What a shut-down processor gives back is redelivered only after its own
 * last pull request has expired: sooner, the server would deliver it again
 * into that request, to an inbox no one reads, and the message would
 * count one delivery more without having been tried.
 */
#define NQ_GIVE_BACK		"-NAK {\"delay\": 7000000000}"
#define NQ_STATS_FRESH_MS	500	/* consumer info cache lifetime */
#define NQ_STATS_STALE_MS	2000	/* older than this: wait a moment */
#define NQ_STATS_WAIT_MS	250	/* how long stats() may wait */
#define NQ_ENSURE_RETRY_MS	1000
#define NQ_CONNECT_RETRY_MS	250	/* until the first connect: no server */
#define NQ_REFUSED_RETRY_MS	5000	/* the server refused us */
#define NQ_MAX_PENDING		4096	/* async publishes awaiting PubAck */
#define NQ_MAX_ACK_PENDING	4096	/* consumer-wide, all processors */
#define NQ_PUB_BUCKETS		4096	/* power of two */
#define NQ_WPI_BATCH		128	/* +WPI sent per release of mu */

/* JetStream API error codes (nats.c's jsErrCode names in brackets). */
#define NQ_ERR_STREAM_FULL	10077	/* max messages/bytes exceeded
					   (JSStreamStoreFailedErr) */
#define NQ_ERR_STORE_FULL	10047	/* insufficient storage
					   (JSStorageResourcesExceededErr) */
#define NQ_ERR_NO_STREAM	10059	/* stream not found
					   (JSStreamNotFoundErr) */

#define NS_PER_MS		INT64_C(1000000)

#define NQ_NMUTEX		2	/* mu, plock */
#define NQ_NCOND		8	/* the condition variables below */
/*
 * Threads that bind keys in the keys' bucket: a synchronous round trip
 * each, kept off the HTTP event loops, which a stalled broker would
 * otherwise hold for as long as the requests wait. Measured on 2 cores
 * with the broker beside, 32 clients: 4 threads let through 2,800 keyed
 * messages a second, 16 about 3,500 (unkeyed: 5,700); the rest is the
 * broker's second write per message.
 */
#define NQ_CLAIM_THREADS	16

/* A publish waiting for its PubAck, found again by its natsMsg pointer. */
struct nq_pub {
	natsMsg *m;
	queue_publish_cb cb;
	void *arg;
	struct nq_pub *next;
	/*
	 * plock guards the two below. nats.c may report a publish (its own
	 * MaxWait timeout) while js_PublishMsgAsync is still reading the
	 * message on the publishing thread: whichever of the two finishes
	 * last frees the message and this record.
	 */
	bool in_publish;
	bool reported;
};

/* A keyed message waiting for its key to be bound before its publish. */
struct nq_claim {
	struct data_message *msg;
	queue_publish_cb cb;
	void *arg;
	struct nq_claim *next;
};

/* A message the server delivered to us and we have not settled yet. */
struct nq_delivery {
	struct delivery d;		/* what the worker sees */
	natsMsg *m;
	int64_t touched_ms;		/* delivered or last marked +WPI */
	bool queued;			/* still in the ready FIFO */
	bool sending;			/* keepalive sends +WPI: keep it */
	struct nq_delivery *prev, *next;	/* in-flight list */
	struct nq_delivery *qnext;	/* ready FIFO */
};

extern const struct queue_ops queue_nats_ops;

struct nats_queue {
	struct queue q;			/* first: handed out as struct queue */

	/* Settings, copied from the configuration by nq_init alone. */
	char *stream;
	char *subject;			/* <prefix>.messages */
	char *filter;			/* <prefix>.> */
	char *next_subj;		/* $JS.API.CONSUMER.MSG.NEXT.<s>.<c> */
	char *url;			/* wiped once nats.c has it */
	char *url_shown;		/* url without credentials: for logs */
	char *client_name;		/* diplom-<role> */
	/*
	 * How to authenticate and encrypt; NULL: not used. The secrets are
	 * handed to nats.c by nq_options and wiped here right after.
	 */
	char *user, *password, *token;
	char *creds, *nkey_seed;	/* paths */
	char *tls_ca, *tls_cert, *tls_key;	/* paths */
	bool tls;			/* NATS_TLS_* given or a tls:// URL */
	const char *auth_hint;		/* what to check when refused */
	bool processor;
	int batch;			/* deliveries per receive */
	int64_t largest_msg;		/* what MAX_BODY_BYTES can become */
	int cap;			/* prefetch bound: ready + requested */
	int64_t cap_bytes;		/* the same in bytes */
	int64_t max_msgs, max_bytes, max_age_ms, replicas;
	int64_t dup_window_ms;		/* Nats-Msg-Id deduplication */
	int64_t ack_wait_ms;

	natsOptions *opts;
	natsConnection *nc;
	jsCtx *js;
	natsSubscription *sub;		/* inbox our pull requests answer to */
	/*
	 * The key-value bucket that binds an idempotency key to its first
	 * body's fingerprint for the duplicate window, shared by every
	 * ingest of the deployment. Set once by the maintenance thread (mu)
	 * and kept until close.
	 */
	char *keys_bucket;
	jsCtx *keys_js;			/* with NQ_KEYS_WAIT_MS */
	kvStore *keys;
	char *inbox;

	pthread_t maint_thr, pull_thr, wpi_thr;
	bool maint_started, pull_started, wpi_started;
	pthread_t claim_thr[NQ_CLAIM_THREADS];
	int claim_started;

	/* How many locks and condition variables exist: close frees those. */
	int nmutex, ncond;

	/*
	 * mu guards everything from here to the counters: connection state,
	 * the stats cache, the ready FIFO, the in-flight list and the pull
	 * bookkeeping shared with the callbacks.
	 */
	pthread_mutex_t mu;
	pthread_cond_t maint_cv;	/* maint thread: work to do */
	pthread_cond_t wpi_cv;		/* wpi thread: stop */
	pthread_cond_t recv_cv;		/* receivers: FIFO non-empty */
	pthread_cond_t space_cv;	/* puller: room or state change */
	pthread_cond_t stats_cv;	/* stats(): cache refreshed */
	pthread_cond_t closed_cv;	/* close(): closed callback ran */
	pthread_cond_t settle_cv;	/* settle: keepalive done sending */
	pthread_cond_t claim_cv;	/* claim threads: work or stop */
	struct nq_claim *claim_head, *claim_tail;	/* FIFO of claims */
	bool connected;
	bool stream_ok;
	bool consumer_ok;
	bool need_ensure;
	int64_t ensure_at_ms;
	bool stats_wanted;
	int64_t stats_at_ms;		/* 0: never refreshed */
	int64_t stats_size;
	int64_t stats_ack_pending;	/* the consumer's; 0 for a publisher */
	bool shut;			/* shutdown(): no new deliveries */
	bool stopping;			/* close(): threads end */
	bool closed_cb_done;
	bool pull_reset;		/* outstanding pull request is gone */
	bool warned_stream, warned_consumer, warned_keys;
	/*
	 * The server refused our credentials and nats.c closed the
	 * connection for good: why, for /health.
	 */
	bool refused;
	char refused_why[96];		/* "": not refused, not there yet */
	bool tried;			/* a connect attempt failed */
	int64_t connect_at_ms;		/* next attempt, until the first works */
	struct nq_delivery *fifo_head, *fifo_tail;
	int buffered;			/* in the FIFO */
	int64_t buffered_bytes;		/* their size, NQ_MSG_OVERHEAD each */
	struct nq_delivery inflight;	/* list head: delivered, unsettled */

	/* plock guards the pending-publish table. */
	pthread_mutex_t plock;
	struct nq_pub *pubs[NQ_PUB_BUCKETS];

	atomic_bool pub_ok;		/* connected and stream present */
	atomic_uint_fast64_t enqueued, dequeued, redelivered;
};

/* queue_nats.c: lifecycle, publishing, stats */
bool	nq_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t at_ms);
void	nq_update_locked(struct nats_queue *nq);
void	nq_cause(char **cause, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
int	nq_fail(char **cause, int rc, natsStatus s, const char *fmt, ...)
	    __attribute__((format(printf, 4, 5)));

/* queue_nats_nkey.c: the public key of an NKey seed file */
#define NQ_NKEY_PUB_LEN		56
int	nq_nkey_public(const char *path, char *pub, size_t publen,
	    char **cause);

/* queue_nats_provision.c: stream, consumer and the keys' bucket */
void	nq_ensure(struct nats_queue *nq);
int64_t	nq_dup_window_ms(const struct nats_queue *nq);

/* queue_nats_pull.c: the data path of a processor */
void	*nq_pull_main(void *arg);
void	*nq_wpi_main(void *arg);
int	nq_receive(struct queue *q, struct delivery **out, int max,
	    int timeout_ms);
int	nq_ack(struct queue *q, struct delivery *d);
int	nq_reject(struct queue *q, struct delivery *d, enum reject_how how);
void	nq_shutdown(struct queue *q);
void	nq_pull_free(struct nats_queue *nq);
/*
 * What a worker sees of a message the server delivered: its body, its
 * Nats-Msg-Id and how often it was delivered, from whatever headers and
 * reply subject it came with. d keeps pointers into m.
 */
void	nq_delivery_wrap(struct nq_delivery *d, natsMsg *m);

#endif
