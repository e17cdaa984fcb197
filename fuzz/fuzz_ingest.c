/*
 * fuzz_ingest.c - the ingest request decoder (message_from_ingest_request),
 * the body of POST /ingest: {"source", "data", "metadata"}. An accepted
 * request becomes a message with a fresh id whose encoding decodes to the
 * same source, data and metadata. The same input is also a batch body
 * (POST /ingest/batch), as a JSON array and as NDJSON: split within its
 * limit, every item a message or a reason, never both.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "message.h"

/* A lower-case UUID: 8-4-4-4-12 hex digits. */
static int
uuid_shaped(const char *s)
{
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!isxdigit((unsigned char)s[i]) ||
		    isupper((unsigned char)s[i])) {
			return 0;
		}
	}
	return s[36] == '\0';
}

/* The input as a batch body: items within the limit, each one thing. */
static void
check_batch(const uint8_t *data, size_t size, unsigned flags,
    const struct metadata_limits *lim)
{
	struct batch_item *items = NULL;
	char *cause = NULL;
	size_t n = 0;
	int rc;

	rc = message_batch_from_request((const char *)data, size, flags, 16,
	    lim, &items, &n, &cause);
	if (rc != 0) {
		FUZZ_CHECK(items == NULL && n == 0 && cause != NULL);
		FUZZ_CHECK(rc == -EINVAL || rc == MESSAGE_EBATCH);
		free(cause);
		return;
	}
	FUZZ_CHECK(n > 0 && n <= 16 && cause == NULL);
	for (size_t i = 0; i < n; i++) {
		FUZZ_CHECK((items[i].msg == NULL) != (items[i].error == NULL));
		FUZZ_CHECK(items[i].msg == NULL ||
		    uuid_shaped(items[i].msg->id));
	}
	message_batch_free(items, n);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* the defaults, small enough that inputs reach each limit */
	static const struct metadata_limits lim = { 64, 256, 4096 };
	struct data_message *m = NULL, *m2 = NULL;
	char *cause = NULL, *enc;
	size_t len = 0;
	int rc;

	check_batch(data, size, 0, &lim);
	check_batch(data, size, MESSAGE_BATCH_NDJSON, &lim);
	/* the gateway's batches of single requests */
	check_batch(data, size, MESSAGE_BATCH_NDJSON | MESSAGE_BATCH_SINGLES,
	    &lim);
	rc = message_from_ingest_request((const char *)data, size, &lim, &m,
	    &cause);
	if (rc != 0) {
		FUZZ_CHECK(m == NULL);
		free(cause);
		return 0;
	}
	FUZZ_CHECK(m != NULL && cause == NULL);
	FUZZ_CHECK(m->id != NULL && uuid_shaped(m->id));
	FUZZ_CHECK(m->timestamp > 0);
	FUZZ_CHECK(m->source == NULL || m->source[0] != '\0');
	FUZZ_CHECK(m->payload_len == 0 || m->payload != NULL);
	FUZZ_CHECK(m->n_metadata <= lim.max_keys);
	for (size_t i = 0; i < m->n_metadata; i++) {
		FUZZ_CHECK(strlen(m->metadata[i].key) <= lim.max_key_bytes);
		FUZZ_CHECK(strlen(m->metadata[i].value) <= lim.max_value_bytes);
		if (i > 0)
			FUZZ_CHECK(strcmp(m->metadata[i - 1].key,
			    m->metadata[i].key) <= 0);
	}

	/* what ingest hands on is what the processor will read */
	enc = message_encode(m, &len);
	FUZZ_CHECK(enc != NULL);
	/* what a later hop must take: never more than the bound */
	FUZZ_CHECK(len <= message_encoded_max(size));
	rc = message_decode(enc, len, &m2, &cause);
	if (rc != 0)
		fprintf(stderr, "decode of the encoding failed: %s\n%s\n",
		    cause, enc);
	FUZZ_CHECK(rc == 0);
	FUZZ_CHECK_SAME_MESSAGE(m, m2);

	free(enc);
	message_free(m);
	message_free(m2);
	return 0;
}
