/* message.h - DataMessage and ProcessingResult, and their JSON */
#ifndef DIPLOM_MESSAGE_H
#define DIPLOM_MESSAGE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;

struct meta_pair {
	char *key;
	char *value;
};

/* The wire message, as the Go services' DataMessage. */
struct data_message {
	char *id;
	int64_t timestamp;		/* unix seconds */
	char *source;
	unsigned char *payload;
	size_t payload_len;
	struct meta_pair *metadata;	/* sorted by key */
	size_t n_metadata;
	/*
	 * The name of the client (API key) that sent it, "client" on the
	 * wire; NULL without API_KEYS_FILE. Its result is that client's.
	 */
	char *client;
	/*
	 * Not on the wire: the id a backend that drops repeated publishes
	 * (nats: Nats-Msg-Id) knows this publish by; NULL: id. A replay has
	 * its own, so that it is not taken for the message's first publish.
	 */
	char *dedup_id;
	/*
	 * Not on the wire: a keyed message's fingerprint
	 * (message_fingerprint), NULL for one without a key. Each hop that
	 * needs it computes it from the content, so nothing has to trust
	 * another's.
	 */
	char *fingerprint;
};

/* What the processor stores for a message. */
struct processing_result {
	char *message_id;
	char *client;			/* the sender's name, or NULL */
	char *source;
	int64_t timestamp;
	int64_t processed_at;		/* unix seconds */
	bool success;
	char *error;			/* NULL or "" on success */
	unsigned char *result;
	size_t result_len;
	int64_t deliveries;
	/*
	 * A failed result keeps the message as it came, to be replayed;
	 * NULL for a success (and for rows older than this).
	 */
	unsigned char *message;
	size_t message_len;
	/* a keyed message's fingerprint; NULL without a key (and older rows) */
	char *fingerprint;
};

/*
 * Decode a DataMessage as Go's encoding/json wrote it: payload base64, empty
 * fields may be absent. Wrong types or bad base64 fail with a reason.
 */
int message_decode(const char *json, size_t len, struct data_message **out,
    char **cause);
/* The same from a value parsed already, which stays the caller's. */
int message_decode_object(struct json_object *obj,
    struct data_message **out, char **cause);
/* Encode as Go would: fields in struct order, empty ones omitted. */
char *message_encode(const struct data_message *msg, size_t *len);
void message_free(struct data_message *msg);

/* What a client's metadata may hold; 0 is no limit. */
struct metadata_limits {
	size_t max_keys;
	size_t max_key_bytes;
	size_t max_value_bytes;
};

/*
 * Decode a client's ingest request {"source", "data", "metadata"} into a new
 * message with a fresh UUID v4 id and the current time. Metadata over the
 * limits (NULL: none) fails with a reason that names the limit.
 */
int message_from_ingest_request(const char *json, size_t len,
    const struct metadata_limits *limits, struct data_message **out,
    char **cause);
/* One item of a batch: its message, or why it was refused. */
struct batch_item {
	struct data_message *msg;	/* NULL when refused */
	char *error;			/* the reason, when refused */
	char *key;			/* its "idempotency_key", or NULL */
};

/* More items than a batch may hold: 413. */
#define MESSAGE_EBATCH	(-E2BIG)

/* How message_batch_from_request reads a body. */
enum {
	MESSAGE_BATCH_NDJSON = 1,	/* one request a line, not an array */
	/*
	 * The items are single requests carried together (the gateway's
	 * forward batches): each is judged as POST /ingest judges its body,
	 * so a field "idempotency_key" means nothing.
	 */
	MESSAGE_BATCH_SINGLES = 2,
};

/*
 * Split a batch ingest body, a JSON array of ingest requests or NDJSON (one
 * request a line, blank lines skipped), into *n items, each decoded and
 * checked on its own as message_from_ingest_request does; an item may carry
 * "idempotency_key". A body that is not a JSON array (NDJSON: never), or
 * holds no item, is -EINVAL; more than max_items (0: no limit) is
 * MESSAGE_EBATCH; both with a reason. Free with message_batch_free.
 */
int message_batch_from_request(const char *body, size_t len, unsigned flags,
    size_t max_items, const struct metadata_limits *limits,
    struct batch_item **items, size_t *n, char **cause);
void message_batch_free(struct batch_item *items, size_t n);

/*
 * The most bytes a JSON array of the message_encode of up to items
 * messages takes, made from a batch body of n bytes.
 */
size_t message_batch_encoded_max(size_t n, size_t items);

/* The longest Idempotency-Key. */
#define IDEMPOTENCY_KEY_MAX 128

/*
 * The message id of a request with an idempotency key: a UUID v5 of the key
 * in the project's namespace, so that every retry gets the same id (36
 * characters and a NUL into id). Spaces and tabs around the key are not
 * part of it. A key is 1 to IDEMPOTENCY_KEY_MAX printable ASCII
 * characters; anything else fails with a reason.
 */
int message_id_for_key(const char *key, char id[37], char **cause);
/*
 * The same for a key a named client sent: a UUID v5 of the name and the key
 * in a namespace of its own, so that two clients never share an id and no
 * one can compute another's without its name. client NULL: as
 * message_id_for_key.
 */
int message_id_for_client_key(const char *client, const char *key,
    char id[37], char **cause);
/* Whether id came from an idempotency key (a UUID v5). */
bool message_id_is_keyed(const char *id);

/* Hex digits of a fingerprint, and its NUL. */
#define MESSAGE_FINGERPRINT_LEN 64

/*
 * What a keyed request's body is judged by when its key comes again: the
 * SHA-256, in lower-case hex, of the decoded source, data and metadata
 * (sorted by key), each length-prefixed. The JSON's spelling (blanks,
 * escapes, the order of fields and of metadata keys), the id and the
 * timestamp do not count; an absent source is the empty one.
 */
int message_fingerprint(const struct data_message *msg,
    char out[MESSAGE_FINGERPRINT_LEN + 1]);
/*
 * Make msg the keyed message of id: its id and its fingerprint. -ENOMEM
 * when there is no memory for them.
 */
int message_set_key(struct data_message *msg, const char *id);

/*
 * The most bytes message_encode makes of a message that came from an ingest
 * request of n bytes: the data becomes base64, 4 bytes for 3; nothing else
 * grows (json-c writes a string no longer than it was escaped in valid
 * JSON); an id and a timestamp are added. A later hop sizes its limit by
 * this, so that it never refuses what the first hop took.
 */
size_t message_encoded_max(size_t n);

/*
 * {"message_id", "processed_at", "success", "error", "result", "deliveries"},
 * and "client" when the result has one.
 */
char *result_to_json(const struct processing_result *res, size_t *len);
void result_clear(struct processing_result *res);

/* {"error": reason} */
char *json_error_body(const char *reason, size_t *len);

bool utf8_valid(const unsigned char *s, size_t len);
/*
 * 0 when the text of a JSON value (one json-c parsed) is fit for a message;
 * else -EINVAL and why, naming the field: bytes that are not UTF-8, a raw
 * control character in a string, NaN or Infinity anywhere, a \u0000 in any
 * string or key.
 */
int message_json_check(const char *json, size_t len, char **cause);
char *base64_encode(const unsigned char *in, size_t len, size_t *out_len);
int base64_decode(const char *in, size_t len, unsigned char **out,
    size_t *out_len);

#endif
