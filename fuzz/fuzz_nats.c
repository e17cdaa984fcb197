/*
 * fuzz_nats.c - the NATS delivery path: a JetStream message with whatever
 * reply subject, headers and body the input holds, wrapped as the pull loop
 * wraps it (nq_delivery_wrap) and handed to the processor's decode and
 * process step. A message must come out as a result: processed, or failed
 * with a reason; never a crash, and an id only from the message itself.
 *
 * Input: lines "reply\n", then "Key: Value\n" headers up to an empty line,
 * then the body, all bytes as they come.
 */
#include <stdbool.h>
#include <string.h>

#include <nats/nats.h>

#include "fuzz.h"
#include "message.h"
#include "queue_nats_int.h"
#include "role.h"

/* The next line of [*p, end), without its '\n', as a C string; NULL at the
 * end. The copy goes in buf (size n). */
static const char *
next_line(const char **p, const char *end, char *buf, size_t n)
{
	const char *nl;
	size_t len;

	if (*p >= end)
		return NULL;
	nl = memchr(*p, '\n', (size_t)(end - *p));
	len = (size_t)((nl != NULL ? nl : end) - *p);
	if (len >= n)
		len = n - 1;
	memcpy(buf, *p, len);
	buf[len] = '\0';
	*p = nl != NULL ? nl + 1 : end;
	return buf;
}

/* The message as the server might send it; NULL when nats.c refuses it. */
static natsMsg *
make_msg(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	char reply[512], line[512], *colon;
	natsMsg *m = NULL;

	if (next_line(&p, end, reply, sizeof(reply)) == NULL)
		return NULL;
	/* the body: what follows the first empty line */
	{
		const char *q = p, *body = end;
		char tmp[512];

		while (next_line(&q, end, tmp, sizeof(tmp)) != NULL) {
			if (tmp[0] == '\0') {
				body = q;
				break;
			}
		}
		if (natsMsg_Create(&m, "diplom.messages", reply[0] != '\0' ?
		    reply : NULL, body, (int)(end - body)) != NATS_OK)
			return NULL;
	}
	while (next_line(&p, end, line, sizeof(line)) != NULL &&
	    line[0] != '\0') {
		if ((colon = strchr(line, ':')) == NULL)
			continue;
		*colon = '\0';
		/* nats.c refuses what a header cannot be; so does the server */
		(void)natsMsgHeader_Add(m, line, colon + 1 + (colon[1] == ' '));
	}
	return m;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nq_delivery d;
	struct processing_result res;
	natsMsg *m = make_msg(data, size);

	if (m == NULL)
		return 0;
	memset(&d, 0, sizeof(d));
	nq_delivery_wrap(&d, m);
	FUZZ_CHECK(d.d.data != NULL);
	processor_process(&d.d, &res, 0);
	if (res.success) {
		FUZZ_CHECK(res.message_id != NULL && res.message_id[0] != '\0');
		FUZZ_CHECK(res.result_len >= 10 &&
		    memcmp(res.result, "PROCESSED_", 10) == 0);
	} else {
		FUZZ_CHECK(res.error != NULL);
		/* a failed row is keyed only by the id the message carried */
		FUZZ_CHECK(res.message_id == NULL ||
		    (d.d.id != NULL && strcmp(res.message_id, d.d.id) == 0));
	}
	result_clear(&res);
	natsMsg_Destroy(m);
	return 0;
}
