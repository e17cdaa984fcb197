/* loadgen/args.h - what diplom-loadgen sends: options, body, retry pacing */
#ifndef DIPLOM_LOADGEN_ARGS_H
#define DIPLOM_LOADGEN_ARGS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define LG_DEFAULT_URL		"http://127.0.0.1:8080/api/v1/ingest"
#define LG_DEFAULT_BATCH_URL	"http://127.0.0.1:8080/api/v1/ingest/batch"
#define LG_MAX_BATCH		1000000
#define LG_DEFAULT_COUNT	1000
#define LG_DEFAULT_CONNECTIONS	16
#define LG_DEFAULT_SIZE		64
#define LG_MAX_CONNECTIONS	10000
#define LG_MAX_SIZE		(64 * 1024 * 1024)

struct lg_opts {
	const char *url;
	int64_t count;		/* messages to send; 0 with --duration */
	int64_t duration_ms;	/* how long to send; 0 with -n */
	int connections;	/* requests in flight */
	double rate;		/* messages/s; 0: as fast as answers come */
	int64_t size;		/* bytes of the "data" field */
	int retry;		/* extra attempts on 503 or a transport error */
	const char *record;	/* SQLite database, NULL: do not record */
	const char *label;	/* the sent table's label column */
	int json;		/* summary as one JSON object */
	/*
	 * An Idempotency-Key with each message, the same on each of its
	 * retries: on by default with --retry.
	 */
	int idempotency;
	/* messages in one request, to a batch endpoint; 0: one, not a batch */
	int batch;
};

/* What lg_opts_parse asks the caller to do next (also the exit status). */
enum lg_parse_result {
	LG_RUN = 0,
	LG_EXIT_OK = 1,		/* --help or --version was printed */
	LG_EXIT_USAGE = 2,	/* *cause says what is wrong */
};

/* Fill o from argv; strings point into argv. Help and version go to out. */
enum lg_parse_result lg_opts_parse(struct lg_opts *o, int argc, char **argv,
    FILE *out, char **cause);
void lg_print_help(FILE *out, const char *prog);

/* Room lg_body_finish needs after the prefix: seq digits and the close. */
#define LG_BODY_TAIL		32

/*
 * The body is {"source":"loadgen","data":"<size bytes>","metadata":
 * {"seq":"<n>"}}. Everything up to the seq is the same for every message,
 * so it is built once and only the tail is written per request.
 */
char *lg_body_prefix(int64_t size, size_t *len);
/* Write seq and the closing braces after a prefix of prefix_len bytes in
 * buf (room for LG_BODY_TAIL more); the whole body's length. */
size_t lg_body_finish(char *buf, size_t prefix_len, uint64_t seq);

/* Room lg_batch_finish needs per message: its prefix, a tail, a key. */
#define LG_ITEM_ROOM(prefix_len)	((prefix_len) + LG_BODY_TAIL + 64)

/*
 * A batch body: a JSON array of the n messages seq, seq + 1, ... into buf
 * (room for 2 + n * LG_ITEM_ROOM(prefix_len)); each carries
 * "idempotency_key": "lg-<tag>-<seq>" unless tag is NULL. Its length.
 */
size_t lg_batch_finish(char *buf, const char *prefix, size_t prefix_len,
    uint64_t seq, int n, const char *tag);

/* Milliseconds to wait before retry number attempt (1, 2, ...): 50 ms
 * doubling up to 1 s, less a random part of up to half (rnd) so that
 * clients turned away together do not come back together. */
unsigned lg_backoff_ms(unsigned attempt, uint32_t rnd);

#endif
