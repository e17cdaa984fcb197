/*
 * fuzz_message.c - the DataMessage decoder (message_decode), as the
 * processor's POST /enqueue and the NATS backend use it. A decoded message
 * must encode, and that encoding must decode to the same message and encode
 * to the same bytes again.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "message.h"

/* What every decoded message must look like. */
static void
check_message(const struct data_message *m)
{
	FUZZ_CHECK(m->id != NULL && m->id[0] != '\0');
	FUZZ_CHECK(m->source == NULL || m->source[0] != '\0');
	FUZZ_CHECK((m->payload_len == 0) || m->payload != NULL);
	for (size_t i = 0; i < m->n_metadata; i++) {
		FUZZ_CHECK(m->metadata[i].key != NULL);
		FUZZ_CHECK(m->metadata[i].value != NULL);
		if (i > 0)
			FUZZ_CHECK(strcmp(m->metadata[i - 1].key,
			    m->metadata[i].key) <= 0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct data_message *m = NULL, *m2 = NULL;
	char *cause = NULL, *enc = NULL, *enc2 = NULL;
	size_t len = 0, len2 = 0;
	int rc;

	rc = message_decode((const char *)data, size, &m, &cause);
	if (rc != 0) {
		FUZZ_CHECK(m == NULL);
		free(cause);
		return 0;
	}
	FUZZ_CHECK(m != NULL && cause == NULL);
	check_message(m);

	enc = message_encode(m, &len);
	FUZZ_CHECK(enc != NULL);
	rc = message_decode(enc, len, &m2, &cause);
	if (rc != 0)
		fprintf(stderr, "re-decode failed: %s\n%s\n", cause, enc);
	FUZZ_CHECK(rc == 0);
	check_message(m2);
	FUZZ_CHECK_SAME_MESSAGE(m, m2);

	/* a second trip changes nothing */
	enc2 = message_encode(m2, &len2);
	FUZZ_CHECK(enc2 != NULL);
	FUZZ_CHECK(len == len2 && memcmp(enc, enc2, len) == 0);

	free(enc);
	free(enc2);
	message_free(m);
	message_free(m2);
	return 0;
}
